"""The tower-and-track detector model, alone on hand-made particles and inside jet generation."""

from __future__ import annotations

import os

import awkward as ak
import numpy as np
import pytest
import uproot

from jetnu.data import validate_jet_file
from jetnu.data.schema import JET_TREE
from jetnu.generate import main
from jetnu.sim import JetGenConfig, generate_jets
from jetnu.sim.detector import DetectorConfig, EnergyResolution, TowerDetector

PHOTON, MUON, PION, K_LONG, NEUTRON = 22, 13, 211, 130, 2112
EXACT = EnergyResolution(0.0, 0.0, 0.0)


def particles(rows):
    """Turn rows (pt, eta, phi, mass, charge, pdg_id) into the keyword arrays of `TowerDetector.simulate`."""
    pt, eta, phi, mass, charge, pdg_id = np.array(rows, dtype=np.float64).T
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    energy = np.sqrt(px**2 + py**2 + pz**2 + mass**2)
    return {"px": px, "py": py, "pz": pz, "energy": energy, "charge": charge, "pdg_id": pdg_id.astype(int)}


def simulate(rows, config=None, seed=0) -> np.ndarray:
    detector = TowerDetector(config or DetectorConfig(), np.random.default_rng(seed))
    return detector.simulate(**particles(rows))


def kinematics(constituents: np.ndarray) -> dict[str, np.ndarray]:
    px, py, pz, energy = constituents.T
    pt = np.hypot(px, py)
    return {"pt": pt, "eta": np.arcsinh(pz / pt), "phi": np.arctan2(py, px), "e": energy}


def one_particle_per_tower(energy_gev: float, pdg_id: int, count: int) -> list[tuple]:
    """Place ``count`` massless neutral particles of one energy at distinct tower centres (0.1 grid)."""
    eta_centres = (np.arange(-40, 40) + 0.5) * 0.1
    phi_width = 2 * np.pi / 63
    phi_centres = -np.pi + (np.arange(63) + 0.5) * phi_width
    eta, phi = (grid.ravel()[:count] for grid in np.meshgrid(eta_centres, phi_centres, indexing="ij"))
    pt = energy_gev / np.cosh(eta)
    return [(pt[i], eta[i], phi[i], 0.0, 0, pdg_id) for i in range(count)]


# --- the model on hand-made particles -------------------------------------------------------


def test_neutrals_in_one_tower_merge():
    """Two photons and a K-long inside one 0.1 x 0.1 cell give one massless constituent at its centre."""
    config = DetectorConfig(ecal=EXACT, hcal=EXACT)
    rows = [(10.0, 0.31, 0.46, 0, 0, PHOTON), (5.0, 0.38, 0.50, 0, 0, PHOTON), (3.0, 0.33, 0.54, 0, 0, K_LONG)]
    energy = particles(rows)["energy"].sum()

    out = simulate(rows, config)

    assert out.shape == (1, 4)
    got = kinematics(out)
    assert got["e"][0] == pytest.approx(energy, rel=1e-12)
    assert got["eta"][0] == pytest.approx(0.35, abs=1e-9)
    phi_width = 2 * np.pi / 63
    assert got["phi"][0] == pytest.approx(-np.pi + 36.5 * phi_width)  # phi bin 36 covers 0.449..0.549
    mass_squared = out[0, 3] ** 2 - np.sum(out[0, :3] ** 2)
    assert abs(mass_squared) < 1e-9 * energy**2


def test_neighbouring_towers_stay_apart():
    config = DetectorConfig(ecal=EXACT, hcal=EXACT)
    out = simulate([(10.0, 0.31, 0.52, 0, 0, PHOTON), (10.0, 0.41, 0.52, 0, 0, PHOTON)], config)
    assert len(out) == 2


def test_tower_size_sets_grid():
    """Two photons 0.05 apart share a 0.1 tower but not a 0.0174 tower."""
    rows = [(10.0, 0.302, 0.52, 0, 0, PHOTON), (10.0, 0.352, 0.52, 0, 0, PHOTON)]
    assert len(simulate(rows, DetectorConfig(ecal=EXACT, tower_size=0.1))) == 1
    assert len(simulate(rows, DetectorConfig(ecal=EXACT, tower_size=0.0174))) == 2


def test_soft_tracks_removed():
    """Charged particles inside the tracker need pT > 0.5 GeV, and tracks keep their four-momentum."""
    rows = [(0.3, 0.5, 1.0, 0.1396, 1, PION), (0.7, -0.5, 2.0, 0.1396, -1, PION), (30.0, 1.0, -1.0, 0.1396, 1, PION)]
    expected = particles(rows)

    out = simulate(rows)

    assert len(out) == 2
    np.testing.assert_allclose(out[:, 0], expected["px"][1:], rtol=1e-12)
    np.testing.assert_allclose(out[:, 3], expected["energy"][1:], rtol=1e-12)


def test_charged_outside_tracker_become_towers():
    """Beyond |eta| = 2.5 a charged pion is a calorimeter deposit and a muon is lost."""
    config = DetectorConfig(ecal=EXACT, hcal=EXACT)
    rows = [(5.0, 3.02, 1.0, 0.1396, 1, PION), (5.0, -3.5, 0.0, 0.1057, -1, MUON), (5.0, 1.0, 0.0, 0.1057, -1, MUON)]

    got = kinematics(simulate(rows, config))

    assert len(got["e"]) == 2
    tower = int(np.argmin(np.abs(got["eta"] - 3.05)))
    assert got["eta"][tower] == pytest.approx(3.05)
    assert got["e"][tower] == pytest.approx(particles(rows)["energy"][0])
    assert got["pt"][1 - tower] == pytest.approx(5.0)  # the muon inside the tracker is a track


def test_towers_below_threshold_dropped():
    config = DetectorConfig(ecal=EXACT, hcal=EXACT, tower_threshold_gev=0.5)
    out = simulate([(0.3, 0.0, 0.0, 0, 0, PHOTON), (0.6, 0.0, 1.5, 0, 0, NEUTRON)], config)
    assert kinematics(out)["e"] == pytest.approx([0.6])


@pytest.mark.parametrize(("pdg_id", "energy_gev"), [(PHOTON, 20.0), (K_LONG, 20.0), (NEUTRON, 60.0)])
def test_towers_conserve_energy_on_average(pdg_id, energy_gev):
    """The mean smeared tower energy equals the deposited energy within 4 standard errors."""
    rows = one_particle_per_tower(energy_gev, pdg_id, 4000)
    config = DetectorConfig()
    resolution = config.ecal if pdg_id == PHOTON else config.hcal

    energies = simulate(rows, config, seed=1)[:, 3]

    assert len(energies) == 4000
    standard_error = resolution.sigma_gev(energy_gev) / np.sqrt(len(energies))
    assert abs(energies.mean() - energy_gev) < 4 * standard_error


def test_resolution_scales_as_inverse_sqrt():
    """With only a stochastic term, sigma/E at 64 GeV is a quarter of that at 4 GeV."""
    resolution = EnergyResolution(0.5, 0.0, 0.0)
    config = DetectorConfig(ecal=resolution, hcal=resolution)

    spread = {}
    for energy_gev in (4.0, 64.0):
        energies = simulate(one_particle_per_tower(energy_gev, PHOTON, 5000), config, seed=2)[:, 3]
        spread[energy_gev] = energies.std() / energies.mean()

    assert spread[4.0] == pytest.approx(0.5 / np.sqrt(4.0), rel=0.05)
    assert spread[64.0] == pytest.approx(0.5 / np.sqrt(64.0), rel=0.05)
    assert spread[4.0] / spread[64.0] == pytest.approx(4.0, rel=0.07)


def test_default_hcal_resolution():
    """Default HCAL at 20 GeV: sigma/E = sqrt(1.0**2 / 20 + 0.05**2) = 0.229."""
    energies = simulate(one_particle_per_tower(20.0, NEUTRON, 5000), seed=3)[:, 3]
    assert energies.std() / 20.0 == pytest.approx(np.sqrt(1.0 / 20 + 0.05**2), rel=0.05)


def test_track_resolution_smears_pt():
    rows = [(50.0, 0.1 * i - 2.0, 0.0, 0.1396, 1, PION) for i in range(40)] * 50
    out = simulate(rows, DetectorConfig(track_pt_resolution=0.02), seed=4)
    pt = kinematics(out)["pt"]
    assert len(pt) == 2000
    assert pt.std() / 50.0 == pytest.approx(0.02, rel=0.1)
    assert pt.mean() == pytest.approx(50.0, rel=0.002)


def test_same_seed_same_towers():
    rows = one_particle_per_tower(10.0, K_LONG, 200) + [(2.0, 0.1, 0.1, 0.1396, 1, PION)]
    np.testing.assert_array_equal(simulate(rows, seed=7), simulate(rows, seed=7))
    assert not np.array_equal(simulate(rows, seed=7), simulate(rows, seed=8))


def test_no_particles():
    empty = {name: np.zeros(0) for name in ("px", "py", "pz", "energy", "charge", "pdg_id")}
    out = TowerDetector(DetectorConfig(), np.random.default_rng(0)).simulate(**empty)
    assert out.shape == (0, 4)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"tower_size": 0.0}, "tower_size must be in"),
        ({"tower_threshold_gev": -1.0}, "tower_threshold_gev must be >= 0"),
        ({"ecal": (0.1, 0.01)}, "ecal must be an EnergyResolution"),
    ],
)
def test_invalid_config_rejected(arguments, message):
    with pytest.raises(ValueError, match=message):
        DetectorConfig(**arguments)


def test_unknown_detector_rejected():
    with pytest.raises(ValueError, match=r"detector must be one of \['none', 'towers'\], got 'calo'"):
        JetGenConfig(detector="calo")


# --- generation with the detector ---------------------------------------------------------


def read_arrays(path):
    with uproot.open(path) as file:
        return file[JET_TREE].arrays(library="ak")


@pytest.fixture(scope="module")
def detector_samples(tmp_path_factory):
    """24 jets at truth level and twice with towers, all from seed 9."""
    folder = tmp_path_factory.mktemp("detector")
    towers = JetGenConfig(detector="towers")
    generate_jets(24, 9, folder / "truth.root", progress=False)
    generate_jets(24, 9, folder / "towers.root", config=towers, progress=False)
    generate_jets(24, 9, folder / "towers_again.root", config=towers, progress=False)
    return folder


def test_towers_file_valid(detector_samples):
    path = detector_samples / "towers.root"
    assert validate_jet_file(path) == 24
    arrays = read_arrays(path)
    assert np.count_nonzero(ak.to_numpy(arrays["label"]) == 1) == 12
    assert np.all((ak.to_numpy(arrays["jet_pt"]) > 550) & (ak.to_numpy(arrays["jet_pt"]) < 650))


def test_towers_fewer_constituents(detector_samples):
    truth = ak.to_numpy(read_arrays(detector_samples / "truth.root")["npart"])
    towers = ak.to_numpy(read_arrays(detector_samples / "towers.root")["npart"])
    assert towers.mean() < 0.8 * truth.mean()


def test_towers_constituents_above_thresholds(detector_samples):
    """Every constituent is a track above 0.5 GeV pT or a tower above 0.5 GeV energy."""
    arrays = read_arrays(detector_samples / "towers.root")
    pt = ak.to_numpy(ak.flatten(arrays["part_pt"]))
    energy = ak.to_numpy(ak.flatten(arrays["part_e"]))
    assert np.all((pt > 0.5) | (energy >= 0.5 * (1 - 1e-6)))


def test_towers_same_seed_same_file(detector_samples):
    first = read_arrays(detector_samples / "towers.root")
    second = read_arrays(detector_samples / "towers_again.root")
    for name in first.fields:
        assert ak.all(ak.flatten(first[name] == second[name], axis=None)), name


def test_cli_detector_options(tmp_path):
    out = tmp_path / "towers.root"
    arguments = ["jets", "--n-jets", "6", "--seed", "4", "--out", str(out), "--no-progress"]

    status = main([*arguments, "--detector", "towers", "--tower-size", "0.05"])

    assert status == 0
    assert os.listdir(tmp_path) == ["towers.root"]
    assert validate_jet_file(out) == 6


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--detector", "calo"], "argument --detector: invalid choice: 'calo'"),
        (["--tower-size", "0.05"], "--tower-size applies only with --detector towers"),
        (["--detector", "towers", "--tower-size", "0"], "argument --tower-size: must be greater than 0"),
        (["--detector", "towers", "--tower-size", "4"], "tower_size must be in (0, pi]"),
    ],
)
def test_cli_rejects_detector_options(tmp_path, capsys, options, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["jets", "--n-jets", "4", "--out", str(tmp_path / "never.root"), "--no-progress", *options])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert os.listdir(tmp_path) == []
