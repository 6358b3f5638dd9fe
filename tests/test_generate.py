"""Jet sample generation with real Pythia8 and FastJet, on samples of a few dozen jets."""

from __future__ import annotations

import os
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from jetnu.data.schema import JET_PARTICLE_BRANCHES, JET_SCALAR_BRANCHES, JET_TREE, JET_WRITE_DTYPES
from jetnu.generate import main
from jetnu.sim import JetBatch, JetGenConfig, generate_jets, is_truth_matched
from jetnu.sim import jet_physics
from jetnu.sim.jet_physics import TOP_LABEL, make_pythia, top_decay_partons
from jetnu.sim.pythia_jets import plan_tasks, split_quota


def read_flat(path: Path) -> dict[str, np.ndarray]:
    """Read every branch of the jets tree as one flat numpy array (jagged ones flattened)."""
    with uproot.open(path) as file:
        arrays = file[JET_TREE].arrays(library="ak")
    return {name: ak.to_numpy(ak.flatten(arrays[name], axis=None)) for name in arrays.fields}


def assert_same_arrays(left: dict[str, np.ndarray], right: dict[str, np.ndarray]) -> None:
    assert left.keys() == right.keys()
    for name in left:
        assert left[name].dtype == right[name].dtype, name
        assert np.array_equal(left[name], right[name]), f"branch {name} differs"


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """200 jets (100 top, 100 QCD) written by `generate_jets` and read back with uproot."""
    path = tmp_path_factory.mktemp("sample") / "jets.root"
    summary = generate_jets(200, 11, path, progress=False)
    with uproot.open(path) as file:
        tree = file[JET_TREE]
        layout = {
            "classnames": file.classnames(),
            "keys": tree.keys(),
            "typenames": {name: tree[name].typename for name in tree.keys()},
        }
        arrays = tree.arrays(library="ak")
    return summary, layout, arrays


# --- truth matching -------------------------------------------------------------------------


def test_truth_match_all_partons_inside():
    assert is_truth_matched(0.5, 1.0, [0.5, 0.9, 0.2, 0.6], [1.0, 1.2, 0.7, 1.3], 0.8)


def test_truth_match_one_parton_outside():
    assert not is_truth_matched(0.5, 1.0, [0.5, 0.9, 1.4, 0.6], [1.0, 1.2, 0.7, 1.3], 0.8)


def test_truth_match_phi_wraps_around():
    """Partons just below +pi are close to a jet just above -pi."""
    jet_phi = -np.pi + 0.1
    partons_phi = [np.pi - 0.1, np.pi - 0.3, -np.pi + 0.2]
    assert is_truth_matched(0.0, jet_phi, [0.0, 0.1, -0.1], partons_phi, 0.8)
    assert not is_truth_matched(0.0, jet_phi, [0.0, 0.1, -0.1], partons_phi, 0.3)


def test_truth_match_radius_is_strict():
    assert not is_truth_matched(0.0, 0.0, [0.8], [0.0], 0.8)
    assert is_truth_matched(0.0, 0.0, [0.79], [0.0], 0.8)


def test_truth_match_rejects_bad_partons():
    assert not is_truth_matched(0.0, 0.0, [], [], 0.8)
    with pytest.raises(ValueError, match="differ in shape"):
        is_truth_matched(0.0, 0.0, [0.1, 0.2], [0.1], 0.8)


def test_top_decay_partons_from_event_record():
    """Each top of a ttbar event gives the decaying top copy, its b and the two W quarks."""
    config = JetGenConfig()
    pythia = make_pythia(TOP_LABEL, 4242, config)
    assert pythia.next()
    event = pythia.event
    partons = top_decay_partons(event)
    assert len(partons) == 2

    # Independent search: tops that decay (have a W daughter) in the whole record.
    decaying_tops = []
    for i in range(event.size()):
        particle = event[i]
        if particle.idAbs() == 6 and any(event[j].idAbs() == 24 for j in particle.daughterList()):
            decaying_tops.append(particle)
    assert len(decaying_tops) == 2
    expected_top_etas = sorted(top.eta() for top in decaying_tops)
    assert sorted(eta[0] for eta, _ in partons) == pytest.approx(expected_top_etas)

    for etas, phis in partons:
        assert etas.shape == (4,)
        assert phis.shape == (4,)
        assert np.all(np.abs(phis) <= np.pi)


# --- sample content -------------------------------------------------------------------------


def test_summary_counts(sample):
    summary, _, _ = sample
    assert summary.n_jets == {"top": 100, "QCD": 100}
    assert summary.n_events["top"] >= 50  # at most two top jets per ttbar event
    assert summary.n_events["QCD"] >= 1
    assert "100 top + 100 QCD jets" in summary.describe()


def test_tree_layout(sample):
    _, layout, arrays = sample
    assert layout["classnames"] == {f"{JET_TREE};1": "TTree"}
    expected = [*JET_SCALAR_BRANCHES, "npart", *JET_PARTICLE_BRANCHES]
    assert sorted(layout["keys"]) == sorted(expected)
    assert layout["typenames"]["npart"] == "int32_t"
    assert layout["typenames"]["label"] == "int32_t"
    for name in JET_PARTICLE_BRANCHES:
        assert layout["typenames"][name] == "float[]", name
    for name in JET_SCALAR_BRANCHES:
        flat = ak.to_numpy(ak.flatten(arrays[name], axis=None))
        assert flat.dtype == JET_WRITE_DTYPES[name], name


def test_npart_counts_constituents(sample):
    _, _, arrays = sample
    for name in JET_PARTICLE_BRANCHES:
        assert np.array_equal(ak.to_numpy(ak.num(arrays[name])), ak.to_numpy(arrays["npart"])), name
    assert ak.all(arrays["npart"] >= 1)
    assert ak.all(arrays["npart"] <= 200)


def test_constituents_sorted_by_pt(sample):
    _, _, arrays = sample
    pt = arrays["part_pt"]
    assert ak.all(pt[:, 1:] <= pt[:, :-1])


def test_classes_balanced_and_shuffled(sample):
    _, _, arrays = sample
    labels = ak.to_numpy(arrays["label"])
    assert np.count_nonzero(labels == 1) == 100
    assert np.count_nonzero(labels == 0) == 100
    first_quarter = labels[:50]
    assert 0 < first_quarter.sum() < 50


def test_selection_cuts_hold(sample):
    _, _, arrays = sample
    jet_pt = ak.to_numpy(arrays["jet_pt"])
    assert np.all((jet_pt > 550) & (jet_pt < 650))
    assert np.all(np.abs(ak.to_numpy(arrays["jet_eta"])) < 2)
    assert np.all(np.abs(ak.to_numpy(arrays["jet_phi"])) <= np.pi)
    assert np.all(np.abs(ak.to_numpy(ak.flatten(arrays["part_phi"]))) <= np.pi)
    assert np.all(np.abs(ak.to_numpy(ak.flatten(arrays["part_eta"]))) < 5)


def test_constituents_add_up_to_jet(sample):
    """The stored constituents are those of the jet: their four-momenta sum to its pT and mass."""
    _, _, arrays = sample
    pt = ak.values_astype(arrays["part_pt"], np.float64)
    eta = ak.values_astype(arrays["part_eta"], np.float64)
    phi = ak.values_astype(arrays["part_phi"], np.float64)
    energy = ak.values_astype(arrays["part_e"], np.float64)

    px = ak.to_numpy(ak.sum(pt * np.cos(phi), axis=1))
    py = ak.to_numpy(ak.sum(pt * np.sin(phi), axis=1))
    pz = ak.to_numpy(ak.sum(pt * np.sinh(eta), axis=1))
    e = ak.to_numpy(ak.sum(energy, axis=1))
    summed_pt = np.hypot(px, py)
    summed_mass = np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0))

    np.testing.assert_allclose(summed_pt, ak.to_numpy(arrays["jet_pt"]), rtol=1e-4)
    np.testing.assert_allclose(summed_mass, ak.to_numpy(arrays["jet_mass"]), atol=0.5)


def test_top_jets_peak_at_top_mass(sample):
    _, _, arrays = sample
    mass = ak.to_numpy(arrays["jet_mass"])
    labels = ak.to_numpy(arrays["label"])
    top_median = np.median(mass[labels == 1])
    qcd_median = np.median(mass[labels == 0])
    assert 140 < top_median < 210
    assert qcd_median < top_median - 30

    # Truth-matched top jets lie 140-210 GeV about 90 % of the time, all top-event jets about 70 %.
    top_in_window = np.mean((mass[labels == 1] > 140) & (mass[labels == 1] < 210))
    assert top_in_window > 0.8


# --- reproducibility and options ------------------------------------------------------------


def test_same_seed_same_arrays(tmp_path):
    first = generate_jets(30, 5, tmp_path / "a.root", progress=False)
    second = generate_jets(30, 5, tmp_path / "b.root", progress=False)
    assert first.n_events == second.n_events
    assert_same_arrays(read_flat(tmp_path / "a.root"), read_flat(tmp_path / "b.root"))


def test_different_seed_different_arrays(tmp_path):
    generate_jets(30, 5, tmp_path / "a.root", progress=False)
    generate_jets(30, 6, tmp_path / "b.root", progress=False)
    a = read_flat(tmp_path / "a.root")
    b = read_flat(tmp_path / "b.root")
    assert not np.array_equal(a["jet_pt"], b["jet_pt"])


def test_max_constituents_keeps_hardest(tmp_path):
    """With the same seed the jets are the same, and a cap keeps the leading constituents."""
    generate_jets(12, 8, tmp_path / "full.root", progress=False)
    generate_jets(12, 8, tmp_path / "capped.root", config=JetGenConfig(max_constituents=10), progress=False)
    with uproot.open(tmp_path / "full.root") as file:
        full = file[JET_TREE].arrays(library="ak")
    with uproot.open(tmp_path / "capped.root") as file:
        capped = file[JET_TREE].arrays(library="ak")

    assert ak.all(capped["npart"] == np.minimum(full["npart"], 10))
    assert np.array_equal(ak.to_numpy(capped["jet_pt"]), ak.to_numpy(full["jet_pt"]))
    for name in JET_PARTICLE_BRANCHES:
        assert ak.all(ak.flatten(capped[name] == full[name][:, :10])), name


def test_two_workers_valid_and_reproducible(tmp_path):
    summary = generate_jets(24, 3, tmp_path / "a.root", workers=2, progress=False)
    generate_jets(24, 3, tmp_path / "b.root", workers=2, progress=False)
    assert summary.n_jets == {"top": 12, "QCD": 12}

    a = read_flat(tmp_path / "a.root")
    assert_same_arrays(a, read_flat(tmp_path / "b.root"))
    assert np.count_nonzero(a["label"] == 1) == 12
    assert np.all((a["jet_pt"] > 550) & (a["jet_pt"] < 650))
    assert sorted(os.listdir(tmp_path)) == ["a.root", "b.root"]


def test_worker_error_reaches_caller(tmp_path):
    """A bad Pythia setting fails inside a worker, and the caller gets its ValueError and no file."""
    config = JetGenConfig(pythia_settings=("NoSuchGroup:noSuchKey = on",))
    with pytest.raises(ValueError, match="NoSuchGroup:noSuchKey"):
        generate_jets(4, 1, tmp_path / "bad.root", workers=2, config=config, progress=False)
    assert os.listdir(tmp_path) == []


def test_failure_removes_temporary_file(tmp_path):
    config = JetGenConfig(pythia_settings=("NoSuchGroup:noSuchKey = on",))
    with pytest.raises(ValueError, match="Pythia rejected"):
        generate_jets(4, 1, tmp_path / "bad.root", config=config, progress=False)
    assert os.listdir(tmp_path) == []


def test_unreachable_selection_raises(tmp_path, monkeypatch):
    """A jet pT window above the pT-hat window yields no jet, so generation stops with a hint."""
    monkeypatch.setattr(jet_physics, "MAX_EVENTS_WITHOUT_JET", 20)
    config = JetGenConfig(pt_min_gev=1500.0, pt_max_gev=1600.0)
    with pytest.raises(RuntimeError, match="pT-hat window"):
        generate_jets(4, 1, tmp_path / "none.root", config=config, progress=False)
    assert os.listdir(tmp_path) == []


# --- planning and arrays --------------------------------------------------------------------


def test_split_quota_sums_to_total():
    assert split_quota(7, 3) == [3, 2, 2]
    assert split_quota(1, 2) == [1, 0]
    assert sum(split_quota(1001, 4)) == 1001


def test_plan_tasks_balances_classes():
    tasks, _ = plan_tasks(11, 0, 3, JetGenConfig())
    assert sum(task.n_top for task in tasks) == 5
    assert sum(task.n_qcd for task in tasks) == 6
    seeds = [seed for task in tasks for seed in (task.top_seed, task.qcd_seed)]
    assert len(set(seeds)) == len(seeds)
    assert all(1 <= seed <= 900_000_000 for seed in seeds)

    again, _ = plan_tasks(11, 0, 3, JetGenConfig())
    assert again == tasks


def test_jet_batch_take_reorders_constituents():
    counts = np.array([2, 0, 3])
    batch = JetBatch.from_columns(
        counts=counts,
        jet_pt=[10.0, 20.0, 30.0],
        jet_eta=[0.0, 0.0, 0.0],
        jet_phi=[0.0, 0.0, np.pi],
        jet_mass=[1.0, 2.0, 3.0],
        label=[0, 1, 0],
        part_pt=[1.0, 2.0, 3.0, 4.0, 5.0],
        part_eta=[0.0] * 5,
        part_phi=[0.0] * 5,
        part_e=[1.0] * 5,
    )
    reordered = batch.take([2, 0, 1])
    assert reordered.scalars["jet_pt"].tolist() == [30.0, 10.0, 20.0]
    assert reordered.counts.tolist() == [3, 2, 0]
    assert reordered.particles["part_pt"].tolist() == [3.0, 4.0, 5.0, 1.0, 2.0]
    assert reordered.scalars["label"].dtype == np.int32
    assert reordered.scalars["jet_phi"][0] <= np.pi  # float32(pi) would exceed pi


# --- command line ---------------------------------------------------------------------------


def test_cli_writes_file(tmp_path):
    out = tmp_path / "cli.root"
    status = main(["jets", "--n-jets", "10", "--seed", "2", "--out", str(out), "--no-progress"])
    assert status == 0
    assert os.listdir(tmp_path) == ["cli.root"]
    with uproot.open(out) as file:
        assert file[JET_TREE].num_entries == 10


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--n-jets", "1"], "argument --n-jets: must be at least 2, got 1"),
        (["--n-jets", "ten"], "argument --n-jets: invalid integer: 'ten'"),
        (["--n-jets", "10", "--workers", "0"], "argument --workers: must be at least 1, got 0"),
        (["--n-jets", "10", "--seed", "-3"], "argument --seed: must be at least 0, got -3"),
        (["--n-jets", "10", "--pt-min", "700"], "pt_min_gev < pt_max_gev"),
        (["--n-jets", "10", "--pthat-min", "700", "--pthat-max", "600"], "pthat_min_gev < pthat_max_gev"),
        (["--n-jets", "10", "--jet-r", "0"], "argument --jet-r: must be greater than 0"),
    ],
)
def test_cli_rejects_bad_arguments(tmp_path, capsys, arguments, message):
    out = tmp_path / "never.root"
    with pytest.raises(SystemExit) as exit_info:
        main(["jets", *arguments, "--out", str(out), "--no-progress"])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_cli_reports_generation_failure(tmp_path, caplog):
    out = tmp_path / "bad.root"
    status = main(["jets", "--n-jets", "4", "--out", str(out), "--no-progress", "--pythia-setting", "Bogus:key = 1"])
    assert status == 1
    assert "Pythia rejected the setting 'Bogus:key = 1'" in caplog.text
    assert os.listdir(tmp_path) == []


def test_cli_requires_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def test_directory_output_rejected_before_generation(tmp_path):
    """An output path that is a folder once failed only after all events were generated."""
    folder = tmp_path / "isdir.root"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match="is a directory"):
        generate_jets(10, 1, folder, workers=1, progress=False)
