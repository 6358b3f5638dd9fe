"""Jet substructure observables from constituent four-vectors: mass, N-subjettiness, multiplicity.

N-subjettiness (J. Thaler and K. Van Tilburg, JHEP 03 (2011) 015, arXiv:1011.2268) with beta = 1:

    tau_N = sum_i pt_i min_k DeltaR_ik / (sum_i pt_i R0)

where k runs over N axes and R0 is the jet radius. The axes are the exclusive kT jets of
the constituents: FastJet reclusters each jet's constituents with the kT algorithm and
a radius so large (FastJet's maximum, 1000) that no constituent merges with the beam, and
stops when N subjets remain. DeltaR is measured in rapidity and azimuth, as FastJet does.
A jet with fewer constituents than N has tau_N = 0, because every constituent can be its
own axis.

FastJet is called once per jet (the clustering is C++). Masses, distances and sums run
vectorised with numpy over all constituents of all jets at once.
"""

from __future__ import annotations

import logging
import math

import awkward as ak
import fastjet
import numpy as np

from jetnu.sim.quiet import silence_fastjet_banner

logger = logging.getLogger(__name__)

JET_RADIUS = 0.8  # R0 of tau_N: the anti-kT radius of the generated jets
# fastjet::JetDefinition::max_allowable_R. Every DeltaR between constituents is far smaller,
# so pairs always merge before any constituent merges with the beam.
KT_RADIUS = 1000.0
MAX_AXES = 3

# Columns of `observable_matrix`, the inputs of the substructure baseline.
FEATURE_NAMES: tuple[str, ...] = ("mass", "tau1", "tau2", "tau3", "tau21", "tau32", "multiplicity")

_banner_silenced = False


def jet_observables(jets: ak.Array, jet_radius: float = JET_RADIUS) -> dict[str, np.ndarray]:
    """Compute every entry of `FEATURE_NAMES` for jets with jagged ``part_pt``, ``part_eta``, ``part_phi``, ``part_e``.

    Returns one float64 array of length ``len(jets)`` per name: ``mass`` in GeV from the
    constituents' four-vector sum, ``tau1..tau3``, the ratios ``tau21 = tau2/tau1`` and
    ``tau32 = tau3/tau2`` (0 where the denominator is 0), and the constituent
    ``multiplicity``.
    """
    missing = [name for name in ("part_pt", "part_eta", "part_phi", "part_e") if name not in ak.fields(jets)]
    if missing:
        raise KeyError(f"jets lack the constituent field(s) {missing}; fields present: {ak.fields(jets)}")
    pt, eta, phi, energy = (jets[name] for name in ("part_pt", "part_eta", "part_phi", "part_e"))

    taus = nsubjettiness(pt, eta, phi, energy, n_axes=MAX_AXES, jet_radius=jet_radius)  # (jets, 3)
    return {
        "mass": jet_mass(pt, eta, phi, energy),
        "tau1": taus[:, 0],
        "tau2": taus[:, 1],
        "tau3": taus[:, 2],
        "tau21": safe_ratio(taus[:, 1], taus[:, 0]),
        "tau32": safe_ratio(taus[:, 2], taus[:, 1]),
        "multiplicity": ak.to_numpy(ak.num(pt, axis=1)).astype(np.float64),
    }


def observable_matrix(jets: ak.Array, jet_radius: float = JET_RADIUS) -> np.ndarray:
    """Stack `jet_observables` into a (jets, features) float64 matrix with columns in `FEATURE_NAMES` order."""
    observables = jet_observables(jets, jet_radius=jet_radius)
    return np.column_stack([observables[name] for name in FEATURE_NAMES])


def jet_mass(pt, eta, phi, energy) -> np.ndarray:
    """Invariant mass of each jet's constituent four-vector sum, in the unit of pt and energy.

    Arguments are jagged (jets, constituents) arrays or nested lists. A negative m^2 from
    rounding gives mass 0.
    """
    counts, (pt, eta, phi, energy) = _flatten(pt, eta, phi, energy)
    jet_index = np.repeat(np.arange(counts.size), counts)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)

    def per_jet(values):
        return np.bincount(jet_index, weights=values, minlength=counts.size)

    mass_squared = per_jet(energy) ** 2 - per_jet(px) ** 2 - per_jet(py) ** 2 - per_jet(pz) ** 2
    return np.sqrt(np.maximum(mass_squared, 0.0))


def nsubjettiness(pt, eta, phi, energy, n_axes: int = MAX_AXES, jet_radius: float = JET_RADIUS) -> np.ndarray:
    """N-subjettiness tau_1..tau_n_axes of every jet, shape (jets, n_axes), with beta = 1 and exclusive kT axes.

    Arguments are jagged (jets, constituents) arrays or nested lists: pt and energy in GeV,
    eta, phi in rad. See the module docstring for the definition.
    """
    if isinstance(n_axes, bool) or not isinstance(n_axes, (int, np.integer)) or n_axes < 1:
        raise ValueError(f"n_axes must be a positive integer, got {n_axes!r}")
    if not jet_radius > 0:
        raise ValueError(f"jet_radius must be positive, got {jet_radius!r}")
    counts, (pt, eta, phi, energy) = _flatten(pt, eta, phi, energy)
    n_jets = counts.size
    jet_index = np.repeat(np.arange(n_jets), counts)

    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    rapidity = _rapidity(pt, pz, energy)
    axes = _exclusive_kt_axes(counts, px, py, pz, energy, n_axes)  # (jets, n_axes, n_axes, 2)

    pt_sum = np.bincount(jet_index, weights=pt, minlength=n_jets)
    normalisation = np.where(pt_sum > 0, pt_sum * jet_radius, 1.0)
    taus = np.zeros((n_jets, n_axes))
    for n in range(1, n_axes + 1):
        # Axes k >= n are NaN padding; jets with fewer than n constituents have NaN axes throughout.
        axis_rapidity = axes[jet_index, n - 1, :n, 0]  # (constituents, n)
        axis_phi = axes[jet_index, n - 1, :n, 1]
        delta_phi = _wrap_phi(phi[:, None] - axis_phi)
        delta_r = np.hypot(rapidity[:, None] - axis_rapidity, delta_phi)
        nearest = np.min(delta_r, axis=1)

        has_axes = counts >= n
        weighted = np.where(has_axes[jet_index], pt * nearest, 0.0)
        taus[:, n - 1] = np.bincount(jet_index, weights=weighted, minlength=n_jets) / normalisation
    return taus


def safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Elementwise ``numerator / denominator``, 0 where the denominator is 0."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    safe_denominator = np.where(denominator != 0, denominator, 1.0)
    return np.where(denominator != 0, numerator / safe_denominator, 0.0)


def _flatten(*jagged) -> tuple[np.ndarray, list[np.ndarray]]:
    """Return the constituent counts per jet and each argument as a flat float64 array."""
    arrays = [ak.Array(values) if not isinstance(values, ak.Array) else values for values in jagged]
    counts = ak.to_numpy(ak.num(arrays[0], axis=1)).astype(np.int64)
    for values in arrays[1:]:
        other = ak.to_numpy(ak.num(values, axis=1))
        if other.shape != counts.shape or np.any(other != counts):
            raise ValueError("constituent arrays differ in the number of jets or of constituents per jet")
    flat = [ak.to_numpy(ak.flatten(values, axis=1)).astype(np.float64) for values in arrays]
    return counts, flat


def _rapidity(pt: np.ndarray, pz: np.ndarray, energy: np.ndarray) -> np.ndarray:
    # FastJet's formula (PseudoJet::_set_rap_phi): m^2 < 0 from rounding counts as massless,
    # so massless constituents get rapidity = pseudorapidity.
    mass_squared = np.maximum(energy**2 - pt**2 - pz**2, 0.0)
    transverse = np.sqrt(pt**2 + mass_squared)
    safe_transverse = np.where(transverse > 0, transverse, 1.0)
    return np.sign(pz) * np.log((energy + np.abs(pz)) / safe_transverse)


def _wrap_phi(delta_phi: np.ndarray) -> np.ndarray:
    return (delta_phi + math.pi) % (2 * math.pi) - math.pi


def _exclusive_kt_axes(
    counts: np.ndarray, px: np.ndarray, py: np.ndarray, pz: np.ndarray, energy: np.ndarray, n_axes: int
) -> np.ndarray:
    """Return (rapidity, phi) of the exclusive kT axes, shape (jets, n_axes, n_axes, 2).

    Entry [j, n - 1, k] is axis k of the n-axis clustering of jet j. Unused slots are NaN,
    and so are all slots of jets with fewer than n constituents.
    """
    global _banner_silenced
    if not _banner_silenced:
        silence_fastjet_banner()
        _banner_silenced = True

    definition = fastjet.JetDefinition(fastjet.kt_algorithm, KT_RADIUS)
    axes = np.full((counts.size, n_axes, n_axes, 2), np.nan)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    for jet in range(counts.size):
        start, stop = offsets[jet], offsets[jet + 1]
        if stop == start:
            continue
        particles = [
            fastjet.PseudoJet(float(px[i]), float(py[i]), float(pz[i]), float(energy[i])) for i in range(start, stop)
        ]
        sequence = fastjet.ClusterSequence(particles, definition)
        for n in range(1, min(n_axes, stop - start) + 1):
            for k, subjet in enumerate(sequence.exclusive_jets(n)):
                axes[jet, n - 1, k] = (subjet.rap(), subjet.phi())
    return axes
