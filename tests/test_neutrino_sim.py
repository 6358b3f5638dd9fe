"""NOvA-like detector simulation: physics of single particles, the readout chain, files and the CLI."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from jetnu.data.schema import EVENT_HIT_BRANCHES, EVENT_INTENSITY_BRANCHES, EVENT_SCALAR_BRANCHES, EVENT_TREE
from jetnu.generate import main
from jetnu.sim.neutrino import (
    COSMIC,
    NC,
    NUE_CC,
    NUMU_CC,
    DetectorConfig,
    Deposits,
    generate_neutrino_events,
    particle_hits,
    read_out,
    simulate_particle,
)
from jetnu.sim.neutrino.deposits import scattered_directions
from jetnu.sim.neutrino.energy_loss import MUON_MASS_MEV, csda_range_cm, mip_dedx_mev_per_cm
from jetnu.sim.neutrino.events import balanced_labels, simulate_event
from jetnu.sim.neutrino.particles import MASSES_MEV, cosmic_muon, neutrino_interaction
from jetnu.sim.neutrino.readout import birks_quenched_mev, digitise, mean_photoelectrons

CONFIG = DetectorConfig()
BEAM = np.array([0.0, 0.0, 1.0])


def read_events(path: Path) -> ak.Array:
    with uproot.open(path) as file:
        return file[EVENT_TREE].arrays(library="ak")


def read_flat(path: Path) -> dict[str, np.ndarray]:
    """Every branch of the events tree as one flat numpy array."""
    arrays = read_events(path)
    return {name: ak.to_numpy(ak.flatten(arrays[name], axis=None)) for name in arrays.fields}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """200 events (50 per class) written by `generate_neutrino_events`, with the tree layout."""
    path = tmp_path_factory.mktemp("neutrino") / "events.root"
    summary = generate_neutrino_events(200, 3, path, progress=False)
    with uproot.open(path) as file:
        tree = file[EVENT_TREE]
        layout = {
            "classnames": file.classnames(),
            "keys": tree.keys(),
            "typenames": {name: tree[name].typename for name in tree.keys()},
        }
    return path, summary, layout, read_events(path)


def events_of(arrays: ak.Array, label: int) -> ak.Array:
    return arrays[arrays["label"] == label]


# --- single particles -------------------------------------------------------------------------


def test_minimum_ionising_loss_is_two_mev_per_cm():
    assert 1.9 < mip_dedx_mev_per_cm(1.0) < 2.1
    assert mip_dedx_mev_per_cm(0.86) == pytest.approx(0.86 * mip_dedx_mev_per_cm(1.0))


def test_muon_track_length_grows_with_energy():
    energies = [300.0, 600.0, 1200.0, 2400.0]
    spans = []
    for energy in energies:
        planes = []
        for seed in range(3):
            hits = particle_hits("mu", energy, [0, 0, 50], BEAM, np.random.default_rng(seed))
            planes.append(np.ptp(hits.plane))
        spans.append(np.mean(planes))

    assert all(shorter < longer for shorter, longer in zip(spans, spans[1:])), spans
    for energy, span in zip(energies, spans):
        expected_planes = csda_range_cm(energy, MUON_MASS_MEV, CONFIG.density_g_cm3) / CONFIG.plane_depth_cm
        assert span == pytest.approx(expected_planes, rel=0.1), energy


def test_stopping_particles_deposit_their_energy():
    # Hadronic interactions would send part of the proton's energy to invisible channels.
    no_interactions = DetectorConfig(proton_interaction_length_cm=1e12)
    for kind, kinetic_mev in (("mu", 500.0), ("p", 150.0), ("e", 60.0)):
        deposits = Deposits()
        rng = np.random.default_rng(0)
        simulate_particle(kind, kinetic_mev, [0, 0, 500], BEAM, rng, no_interactions, deposits)
        assert deposits.total_mev == pytest.approx(kinetic_mev, rel=0.1), kind


def test_electron_shower_depth_grows_with_log_energy():
    energies = np.array([250.0, 500.0, 1000.0, 2000.0, 4000.0])
    start_z = 50.0
    centroids_x0 = []
    for energy in energies:
        depths = []
        for seed in range(8):
            hits = particle_hits("e", energy, [0, 0, start_z], BEAM, np.random.default_rng(seed))
            plane_centre_cm = (hits.plane + 0.5) * CONFIG.plane_depth_cm
            depths.append(np.average(plane_centre_cm - start_z, weights=hits.energy) / CONFIG.radiation_length_cm)
        centroids_x0.append(np.mean(depths))

    assert all(shallow < deep for shallow, deep in zip(centroids_x0, centroids_x0[1:])), centroids_x0
    # A Gamma profile with t_max = ln(E / Ec) - 0.5 has its centroid one X0 deeper per e-fold of energy.
    slope = np.polyfit(np.log(energies), centroids_x0, 1)[0]
    assert 0.8 < slope < 1.2


def test_photon_shower_starts_after_a_gap():
    first_planes = {"e": [], "gamma": []}
    for kind in first_planes:
        for seed in range(20):
            hits = particle_hits(kind, 1000.0, [0, 0, 50], BEAM, np.random.default_rng(seed))
            first_planes[kind].append(hits.plane.min())
    gap_cm = (np.mean(first_planes["gamma"]) - np.mean(first_planes["e"])) * CONFIG.plane_depth_cm
    mean_free_path_cm = 9 / 7 * CONFIG.radiation_length_cm
    assert 0.5 * mean_free_path_cm < gap_cm < 1.5 * mean_free_path_cm


def test_scattering_walk_spread_adds_in_quadrature():
    """After n steps of projected width theta0 the projected angle has width sqrt(n) * theta0."""
    rng = np.random.default_rng(1)
    final_angles = []
    for _ in range(400):
        directions = scattered_directions(BEAM, np.full(101, 0.01), rng)
        final_angles.append(math.atan2(directions[-1, 0], directions[-1, 2]))
    assert np.std(final_angles) == pytest.approx(0.1, rel=0.15)


def test_hits_of_a_track_are_sorted_and_typed():
    hits = particle_hits("mu", 800.0, [10, -20, 50], [0.2, 0.1, 1.0], np.random.default_rng(0))
    keys = hits.plane.astype(np.int64) * CONFIG.n_cells + hits.cell
    assert np.all(np.diff(keys) > 0)
    assert hits.plane.dtype == np.int32
    assert hits.adc.dtype == np.float32
    assert hits.energy.dtype == np.float32


def test_unknown_particle_kind_rejected():
    with pytest.raises(ValueError, match="unknown particle kind 'kaon'"):
        particle_hits("kaon", 100.0, [0, 0, 50], BEAM, np.random.default_rng(0))


# --- interactions and cosmic muons --------------------------------------------------------------


@pytest.mark.parametrize("lepton", ["mu", "e", "nu"])
def test_interaction_conserves_four_momentum(lepton):
    rng = np.random.default_rng(7)
    for energy_gev in (0.6, 1.5, 2.0, 4.5):
        particles, lepton_energy_gev, inelasticity = neutrino_interaction(energy_gev, lepton, rng)
        total = np.sum([four for _, four in particles], axis=0)
        energy = energy_gev * 1000.0
        np.testing.assert_allclose(total[1:], [0.0, 0.0, energy], atol=1e-6)
        # The target is a proton or a neutron at rest.
        target_mass = total[0] - energy
        assert min(abs(target_mass - MASSES_MEV["p"]), abs(target_mass - MASSES_MEV["n"])) < 1e-6
        assert particles[0][0] == lepton
        assert lepton_energy_gev == pytest.approx(energy_gev * (1 - inelasticity))


def test_cosmic_muons_come_down_with_cos3_zenith():
    rng = np.random.default_rng(2)
    directions = np.array([cosmic_muon(rng, CONFIG)[1] for _ in range(4000)])
    cos_zenith = -directions[:, 1]
    assert np.all(cos_zenith > 0)
    # A cos^3 density on [0, 1] has mean 4/5.
    assert np.mean(cos_zenith) == pytest.approx(0.8, abs=0.01)


# --- readout chain ------------------------------------------------------------------------------


def test_birks_quenching_grows_with_dedx():
    dedx = np.array([0.0, 2.0, 10.0, 50.0, 200.0])
    quenched = birks_quenched_mev(10.0, dedx, CONFIG.birks_cm_per_mev)
    assert quenched[0] == 10.0
    assert np.all(np.diff(quenched) < 0)


def test_mean_light_monotone_in_energy_and_distance():
    energies = np.array([1.0, 5.0, 20.0, 100.0])
    by_energy = mean_photoelectrons(energies, 2.0, 300.0, CONFIG)
    assert np.all(np.diff(by_energy) > 0)

    distances = np.array([0.0, 200.0, 700.0, 1400.0])
    by_distance = mean_photoelectrons(10.0, 2.0, distances, CONFIG)
    assert np.all(np.diff(by_distance) < 0)
    assert by_distance[2] / by_distance[0] == pytest.approx(math.exp(-700.0 / CONFIG.attenuation_length_cm))


def test_digitised_mean_follows_light_until_saturation():
    rng = np.random.default_rng(3)
    mean_pe = np.array([2.0, 10.0, 50.0, 200.0, 5000.0])
    adc = np.array([digitise(np.full(2000, pe), rng, CONFIG).mean() for pe in mean_pe])
    assert np.all(np.diff(adc) > 0)
    np.testing.assert_allclose(adc[:4], mean_pe[:4] * CONFIG.adc_per_pe, rtol=0.05)
    assert adc[-1] == CONFIG.adc_max


def test_threshold_drops_faint_cells():
    # Two deposits in different cells of plane 10: a faint one and a bright one.
    points = np.array([[-100.0, 0.0, 10.5 * CONFIG.plane_depth_cm], [100.0, 0.0, 10.5 * CONFIG.plane_depth_cm]])
    energies = np.array([0.05, 20.0])
    dedx = np.full(2, 2.0)

    hits = read_out(points, energies, dedx, np.random.default_rng(0), CONFIG)
    assert len(hits) == 1
    assert hits.energy[0] == pytest.approx(0.02)
    assert hits.adc[0] >= CONFIG.threshold_adc

    no_threshold = DetectorConfig(threshold_adc=0.0, noise_adc=0.0)
    assert len(read_out(points, energies, dedx, np.random.default_rng(0), no_threshold)) == 2


def test_deposits_outside_detector_dropped():
    outside = np.array([[0.0, 0.0, -1.0], [CONFIG.width_cm, 0.0, 50.0], [0.0, 0.0, CONFIG.length_cm + 1.0]])
    hits = read_out(outside, np.full(3, 50.0), np.full(3, 2.0), np.random.default_rng(0), CONFIG)
    assert len(hits) == 0


# --- events and files ---------------------------------------------------------------------------


def test_tree_has_schema_branches(sample):
    _, _, layout, _ = sample
    assert layout["classnames"] == {f"{EVENT_TREE};1": "TTree"}
    expected = {*EVENT_SCALAR_BRANCHES, *EVENT_HIT_BRANCHES, *EVENT_INTENSITY_BRANCHES.values(), "nhit"}
    assert expected <= set(layout["keys"])
    typenames = layout["typenames"]
    assert typenames["label"] == "int32_t"
    assert typenames["nu_energy"] == "float"
    assert typenames["nhit"] == "int32_t"
    for name in ("hit_view", "hit_plane", "hit_cell"):
        assert typenames[name] == "int32_t[]"
    for name in ("hit_adc", "hit_energy"):
        assert typenames[name] == "float[]"


def test_classes_balanced(sample):
    _, summary, _, arrays = sample
    labels = ak.to_numpy(arrays["label"])
    assert np.bincount(labels, minlength=4).tolist() == [50, 50, 50, 50]
    assert summary.n_events == {"numu_cc": 50, "nue_cc": 50, "nc": 50, "cosmic": 50}
    # Shuffled: the first 20 events are not all of one class.
    assert len(set(labels[:20].tolist())) > 1


def test_uneven_quotas_differ_by_one():
    labels = balanced_labels(10, 0, (NUMU_CC, NUE_CC, NC, COSMIC))
    assert sorted(np.bincount(labels).tolist()) == [2, 2, 3, 3]


def test_hit_views_match_plane_parity(sample):
    flat = read_flat(sample[0])
    assert np.array_equal(flat["hit_view"], flat["hit_plane"] % 2)


def test_hits_inside_detector_and_above_threshold(sample):
    flat = read_flat(sample[0])
    assert flat["hit_plane"].min() >= 0
    assert flat["hit_plane"].max() < CONFIG.n_planes
    assert flat["hit_cell"].min() >= 0
    assert flat["hit_cell"].max() < CONFIG.n_cells
    assert flat["hit_adc"].min() >= CONFIG.threshold_adc
    assert flat["hit_adc"].max() <= CONFIG.adc_max
    assert flat["hit_energy"].min() > 0
    assert flat["nhit"].min() >= CONFIG.min_hits


def test_truth_energies_consistent(sample):
    arrays = sample[3]
    nu_energy = ak.to_numpy(arrays["nu_energy"])
    label = ak.to_numpy(arrays["label"])
    neutrino = label != COSMIC
    assert np.all(nu_energy[~neutrino] == 0)
    assert nu_energy[neutrino].min() >= CONFIG.nu_energy_min_gev
    assert nu_energy[neutrino].max() <= CONFIG.nu_energy_max_gev
    inelasticity = ak.to_numpy(arrays["y_inelasticity"])[neutrino]
    assert np.all((inelasticity >= 0) & (inelasticity <= 1))


def test_cosmic_muons_are_steep(sample):
    cosmics = events_of(sample[3], COSMIC)
    vertical_cm = []
    along_beam_cm = []
    for event in cosmics:
        yz = np.asarray(event["hit_view"]) == 1
        planes = np.asarray(event["hit_plane"])[yz]
        cells = np.asarray(event["hit_cell"])[yz]
        if yz.sum() < 2:
            continue
        vertical_cm.append(np.ptp(cells) * CONFIG.cell_width_cm)
        along_beam_cm.append(np.ptp(planes) * CONFIG.plane_depth_cm)
    assert len(vertical_cm) > 40
    # For a cos^3 zenith rate, the mean of tan(zenith) |sin(azimuth)| = (pi / 4)(2 / pi) = 1/2 is
    # the ratio of beam-axis to vertical extent, and 85-90 % of tracks are more vertical than along z.
    assert np.mean(vertical_cm) > 1.5 * np.mean(along_beam_cm)
    assert np.mean(np.asarray(vertical_cm) > np.asarray(along_beam_cm)) > 0.75


def _length_and_width(events: ak.Array) -> tuple[float, float]:
    """Mean 10-90 % plane span of the hits, and mean hits per hit plane."""
    lengths = []
    widths = []
    for event in events:
        planes = np.asarray(event["hit_plane"])
        lengths.append(np.quantile(planes, 0.9) - np.quantile(planes, 0.1))
        widths.append(len(planes) / len(np.unique(planes)))
    return float(np.mean(lengths)), float(np.mean(widths))


def test_nue_shorter_and_wider_than_numu(sample):
    arrays = sample[3]
    numu_length, numu_width = _length_and_width(events_of(arrays, NUMU_CC))
    nue_length, nue_width = _length_and_width(events_of(arrays, NUE_CC))
    assert nue_length < numu_length
    assert nue_width > numu_width


def test_seed_reproduces_file(tmp_path):
    first = generate_neutrino_events(24, 5, tmp_path / "a.root", progress=False)
    generate_neutrino_events(24, 5, tmp_path / "b.root", progress=False)
    generate_neutrino_events(24, 6, tmp_path / "c.root", progress=False)

    a, b, c = (read_flat(tmp_path / name) for name in ("a.root", "b.root", "c.root"))
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        assert np.array_equal(a[name], b[name]), f"branch {name} differs"
    assert not np.array_equal(a["nu_energy"], c["nu_energy"])
    assert first.n_events == {"numu_cc": 6, "nue_cc": 6, "nc": 6, "cosmic": 6}


def test_workers_give_same_arrays(tmp_path):
    generate_neutrino_events(12, 9, tmp_path / "one.root", progress=False)
    summary = generate_neutrino_events(12, 9, tmp_path / "two.root", workers=2, progress=False)
    assert summary.workers == 2

    one, two = read_flat(tmp_path / "one.root"), read_flat(tmp_path / "two.root")
    for name in one:
        assert np.array_equal(one[name], two[name]), f"branch {name} differs"


def test_class_subset(tmp_path):
    summary = generate_neutrino_events(6, 1, tmp_path / "cosmic.root", classes=["cosmic"], progress=False)
    assert summary.n_events["cosmic"] == 6
    assert set(ak.to_numpy(read_events(tmp_path / "cosmic.root")["label"]).tolist()) == {COSMIC}
    with pytest.raises(ValueError, match="unknown event class 'tau_cc'"):
        generate_neutrino_events(6, 1, tmp_path / "x.root", classes=["tau_cc"], progress=False)


def test_failed_generation_leaves_no_file(tmp_path):
    """Events that can never pass min_hits raise, and the temporary file is removed."""
    config = DetectorConfig(min_hits=100_000)
    out = tmp_path / "never.root"
    with pytest.raises(RuntimeError, match="fewer than min_hits=100000"):
        generate_neutrino_events(1, 0, out, config=config, classes=["cosmic"], progress=False)
    assert list(tmp_path.iterdir()) == []


def test_simulate_event_rejects_bad_label():
    with pytest.raises(ValueError, match="invalid class label 7"):
        simulate_event(7, np.random.default_rng(0))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"n_planes": 1}, "n_planes must be an integer of at least 2"),
        ({"step_cm": 0.0}, "step_cm must be positive"),
        ({"nu_energy_peak_gev": 9.0}, "nu_energy_peak_gev"),
        ({"fiducial_back_margin_cm": 5000.0}, "leaves no fiducial volume"),
        ({"threshold_adc": 5000.0}, "must exceed threshold_adc"),
    ],
)
def test_config_rejects_invalid(overrides, message):
    with pytest.raises(ValueError, match=message):
        DetectorConfig(**overrides)


# --- command line -------------------------------------------------------------------------------


def test_cli_writes_file(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="jetnu.generate")
    out = tmp_path / "cli.root"
    arguments = ["neutrino", "--n-events", "8", "--seed", "2", "--out", str(out), "--no-progress", "--n-planes", "300"]
    status = main(arguments)
    assert status == 0
    assert [path.name for path in tmp_path.iterdir()] == ["cli.root"]
    flat = read_flat(out)
    assert len(flat["label"]) == 8
    assert flat["hit_plane"].max() < 300
    assert "wrote 2 numu_cc + 2 nue_cc + 2 nc + 2 cosmic events" in caplog.text
    assert "events/s" in caplog.text


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--n-events", "0"], "--n-events: must be at least 1"),
        (["--n-events", "4", "--workers", "0"], "--workers: must be at least 1"),
        (["--n-events", "4", "--classes", "tau_cc"], "invalid choice: 'tau_cc'"),
        (["--n-events", "4", "--step-cm", "0"], "step_cm must be positive"),
        (["--n-events", "4", "--n-cells", "many"], "invalid integer: 'many'"),
    ],
)
def test_cli_rejects_bad_arguments(tmp_path, capsys, arguments, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["neutrino", "--out", str(tmp_path / "x.root"), "--no-progress", *arguments])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
