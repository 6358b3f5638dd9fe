"""Jet mass and N-subjettiness on constructed jets with values known by hand."""

import math

import awkward as ak
import numpy as np
import pytest

from jetnu.substructure import FEATURE_NAMES, jet_mass, jet_observables, nsubjettiness, observable_matrix, safe_ratio


def _massless_jet(pt, eta, phi) -> dict[str, np.ndarray]:
    pt, eta, phi = (np.asarray(values, dtype=np.float64) for values in (pt, eta, phi))
    return {"part_pt": pt, "part_eta": eta, "part_phi": phi, "part_e": pt * np.cosh(eta)}


def _jets(*jets: dict) -> ak.Array:
    return ak.Array({name: [jet[name].tolist() for jet in jets] for name in jets[0]})


def _prongs(centres, *, spread=0.01, per_prong=5, seed=0) -> dict[str, np.ndarray]:
    """A jet of ``per_prong`` massless particles of pT 100 GeV around each (eta, phi) centre."""
    rng = np.random.default_rng(seed)
    eta = np.concatenate([eta0 + rng.normal(0, spread, per_prong) for eta0, _ in centres])
    phi = np.concatenate([phi0 + rng.normal(0, spread, per_prong) for _, phi0 in centres])
    return _massless_jet(np.full(eta.size, 100.0), eta, phi)


def test_symmetric_two_particle_jet_exact():
    # Two 100 GeV massless particles at eta = 0, phi = +-0.2: the one-axis kT jet is their sum,
    # at phi = 0, so each is 0.2 from it and tau1 = (2 * 100 * 0.2) / (200 * 0.8) = 0.25.
    jets = _jets(_massless_jet([100.0, 100.0], [0.0, 0.0], [0.2, -0.2]))
    observables = jet_observables(jets)

    assert observables["tau1"][0] == pytest.approx(0.25, rel=1e-9)
    assert observables["tau2"][0] == 0.0  # each particle is its own axis
    assert observables["tau3"][0] == 0.0  # fewer constituents than axes
    assert observables["tau21"][0] == 0.0
    assert observables["tau32"][0] == 0.0  # 0/0 counts as 0
    assert observables["multiplicity"][0] == 2
    assert observables["mass"][0] == pytest.approx(2 * 100.0 * math.sin(0.2), rel=1e-9)


def test_asymmetric_three_particle_tau1_by_hand():
    pt, phi = np.array([100.0, 50.0, 20.0]), np.array([0.1, -0.2, 0.3])
    jets = _jets(_massless_jet(pt, [0.0, 0.0, 0.0], phi))

    # At eta = 0 the summed four-vector has pz = 0, so the axis lies at rapidity 0 and the
    # azimuth of the summed transverse momentum.
    axis_phi = math.atan2(np.sum(pt * np.sin(phi)), np.sum(pt * np.cos(phi)))
    expected = np.sum(pt * np.abs(phi - axis_phi)) / (pt.sum() * 0.8)
    assert nsubjettiness(jets.part_pt, jets.part_eta, jets.part_phi, jets.part_e)[0, 0] == pytest.approx(expected)


def test_two_particle_mass_matches_formula():
    # Massless: m^2 = 2 pt1 pt2 (cosh(d eta) - cos(d phi)).
    jets = _jets(_massless_jet([120.0, 40.0], [0.3, -0.5], [1.0, 1.6]))
    expected = math.sqrt(2 * 120.0 * 40.0 * (math.cosh(0.8) - math.cos(0.6)))
    assert jet_mass(jets.part_pt, jets.part_eta, jets.part_phi, jets.part_e)[0] == pytest.approx(expected, rel=1e-9)


def test_massive_constituents_mass_matches_formula():
    # Two particles of mass 5 and 10 GeV: m^2 = m1^2 + m2^2 + 2 (E1 E2 - p1 . p2).
    pt, eta, phi, mass = np.array([80.0, 60.0]), np.array([0.2, 0.6]), np.array([0.0, 0.4]), np.array([5.0, 10.0])
    momentum = np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], axis=1)  # (particles, xyz)
    energy = np.sqrt(np.sum(momentum**2, axis=1) + mass**2)
    expected = math.sqrt(mass[0] ** 2 + mass[1] ** 2 + 2 * (energy[0] * energy[1] - momentum[0] @ momentum[1]))

    result = jet_mass([pt.tolist()], [eta.tolist()], [phi.tolist()], [energy.tolist()])
    assert result[0] == pytest.approx(expected, rel=1e-9)


def test_one_prong_has_small_tau1():
    one_prong = jet_observables(_jets(_prongs([(0.0, 0.0)])))
    two_prongs = jet_observables(_jets(_prongs([(0.0, -0.25), (0.0, 0.25)])))
    assert one_prong["tau1"][0] < 0.03
    assert two_prongs["tau1"][0] > 0.2


def test_two_prongs_have_small_tau21():
    observables = jet_observables(_jets(_prongs([(0.0, -0.25), (0.0, 0.25)])))
    assert observables["tau21"][0] < 0.1
    assert observables["tau1"][0] > 0.2


def test_three_prongs_have_small_tau32_not_tau21():
    observables = jet_observables(_jets(_prongs([(0.3, 0.0), (-0.15, 0.26), (-0.15, -0.26)])))
    assert observables["tau32"][0] < 0.1
    assert observables["tau21"][0] > 0.4


def test_jet_across_phi_boundary_same_as_rotated():
    """Delta phi wraps at +-pi: a jet straddling phi = pi gives the taus of the same jet at phi = 0."""
    centred = _prongs([(0.0, -0.25), (0.0, 0.25), (0.2, 0.1)], seed=4)
    wrapped = dict(centred)
    wrapped["part_phi"] = (centred["part_phi"] + math.pi + math.pi) % (2 * math.pi) - math.pi  # now near +-pi

    taus = [nsubjettiness(*(_jets(jet)[name] for name in ("part_pt", "part_eta", "part_phi", "part_e"))) for jet in (centred, wrapped)]
    np.testing.assert_allclose(taus[1], taus[0], rtol=1e-9, atol=1e-12)
    assert taus[0][0, 0] > 0.1


def test_many_jets_equal_one_at_a_time():
    jets = [
        _prongs([(0.0, 0.0)], seed=1),
        _prongs([(0.5, 1.0), (0.9, 1.3)], seed=2),
        _massless_jet([50.0], [1.0], [-2.0]),
        _prongs([(-1.0, 3.0), (-0.8, -3.0), (-1.2, 2.9)], seed=3),
    ]
    together = observable_matrix(_jets(*jets))
    one_by_one = np.vstack([observable_matrix(_jets(jet)) for jet in jets])

    assert together.shape == (4, len(FEATURE_NAMES))
    np.testing.assert_allclose(together, one_by_one, rtol=1e-12)
    # The single-particle jet has no substructure: every tau is 0 and the mass vanishes.
    np.testing.assert_allclose(together[2, 1:6], 0.0, atol=1e-12)
    assert together[2, 0] == pytest.approx(0.0, abs=1e-6)


def test_jet_without_constituents_gives_zeros():
    jets = ak.Array({"part_pt": [[], [100.0]], "part_eta": [[], [0.0]], "part_phi": [[], [0.0]], "part_e": [[], [100.0]]})
    matrix = observable_matrix(jets)
    np.testing.assert_array_equal(matrix[0], np.zeros(len(FEATURE_NAMES)))
    assert matrix[1, FEATURE_NAMES.index("multiplicity")] == 1


def test_safe_ratio_zero_denominator():
    np.testing.assert_array_equal(safe_ratio([1.0, 0.0, 3.0], [2.0, 0.0, 0.0]), [0.5, 0.0, 0.0])


def test_missing_constituent_field_named():
    jets = ak.Array({"part_pt": [[1.0]], "part_eta": [[0.0]], "part_phi": [[0.0]]})
    with pytest.raises(KeyError, match="part_e"):
        jet_observables(jets)


def test_mismatched_constituent_counts_rejected():
    with pytest.raises(ValueError, match="differ in the number"):
        jet_mass([[1.0, 2.0]], [[0.0]], [[0.0, 0.1]], [[1.0, 2.0]])
