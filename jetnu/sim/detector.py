"""A simple detector model: tracks for charged particles, calorimeter towers for the rest.

It turns the visible final-state particles of one event into detector-level constituents,
so that constituent counts and jet images come closer to those of detector-level samples.

- Tracks: charged particles with |eta| < ``track_abs_eta_max`` (2.5) and
  pT > ``track_pt_min_gev`` (0.5 GeV) are kept with their momentum, optionally smeared
  with sigma(pT)/pT = ``track_pt_resolution``. Softer charged particles inside the tracker
  are dropped.
- Towers: the (eta, phi) plane is divided into cells of ``tower_size`` x ``tower_size``.
  Phi is split into round(2 pi / tower_size) equal bins, so the bins close around the
  circle. Photons and electrons deposit into the tower's ECAL part, while neutral hadrons
  and charged hadrons outside the tracker deposit into its HCAL part. Muons outside the
  tracker are dropped because they leave only a minimum-ionising signal.
- Each part's energy E (GeV) is smeared with sigma/E = a/sqrt(E) (+) b (+) c/E, summed in
  quadrature. The draw is log-normal with mean E and standard deviation sigma, so smeared
  energies stay positive and the mean is unbiased.
- A tower whose smeared ECAL + HCAL energy is below ``tower_threshold_gev`` (0.5 GeV) is
  dropped. Kept towers are massless four-vectors pointing at the tower centre.

Default resolutions are generic values of the size used in Delphes-like detector cards,
an estimate rather than a model of one detector: ECAL a = 0.10 sqrt(GeV), b = 0.01,
c = 0; HCAL a = 1.0 sqrt(GeV), b = 0.05, c = 0. The calorimeter covers every particle it
receives, so its acceptance is the generator's ``particle_abs_eta_max``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

PHOTON_ID = 22
ELECTRON_ID = 11
MUON_ID = 13


@dataclass(frozen=True)
class EnergyResolution:
    """Calorimeter resolution sigma/E = stochastic/sqrt(E) (+) constant (+) noise_gev/E, E in GeV."""

    stochastic: float  # a, in sqrt(GeV)
    constant: float  # b, dimensionless
    noise_gev: float = 0.0  # c, GeV

    def __post_init__(self):
        for name in ("stochastic", "constant", "noise_gev"):
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"EnergyResolution.{name} must be >= 0, got {value!r}")

    def sigma_gev(self, energy_gev: np.ndarray) -> np.ndarray:
        """Return the absolute resolution sigma(E) in GeV."""
        energy_gev = np.asarray(energy_gev, dtype=np.float64)
        return np.sqrt(self.stochastic**2 * energy_gev + (self.constant * energy_gev) ** 2 + self.noise_gev**2)


@dataclass(frozen=True)
class DetectorConfig:
    """Parameters of the tower-and-track detector model (see the module docstring)."""

    tower_size: float = 0.1  # tower width in eta and (approximately) in phi, rad
    ecal: EnergyResolution = field(default_factory=lambda: EnergyResolution(0.10, 0.01, 0.0))
    hcal: EnergyResolution = field(default_factory=lambda: EnergyResolution(1.0, 0.05, 0.0))
    tower_threshold_gev: float = 0.5  # towers with less smeared energy are dropped, GeV
    track_pt_min_gev: float = 0.5  # charged particles inside the tracker need more pT to be tracks, GeV
    track_abs_eta_max: float = 2.5  # tracker acceptance in |eta|
    track_pt_resolution: float = 0.0  # sigma(pT)/pT of tracks, where 0 keeps track momenta exact

    def __post_init__(self):
        if not 0 < self.tower_size <= np.pi:
            raise ValueError(f"tower_size must be in (0, pi] rad, got {self.tower_size!r}")
        for name in ("ecal", "hcal"):
            if not isinstance(getattr(self, name), EnergyResolution):
                raise ValueError(f"{name} must be an EnergyResolution, got {getattr(self, name)!r}")
        for name in ("tower_threshold_gev", "track_pt_min_gev", "track_abs_eta_max", "track_pt_resolution"):
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")

    @property
    def num_phi_bins(self) -> int:
        return max(1, round(2 * np.pi / self.tower_size))


class TowerDetector:
    """Apply `DetectorConfig` to the particles of one event, drawing from ``rng``.

    The same configuration, seed and sequence of events give the same output.
    """

    def __init__(self, config: DetectorConfig, rng: np.random.Generator):
        self.config = config
        self.rng = rng

    def simulate(self, px, py, pz, energy, charge, pdg_id) -> np.ndarray:
        """Return the detector-level constituents as rows (px, py, pz, e) in GeV, tracks first.

        Each argument is one array with a value per particle: momentum and energy in GeV,
        electric charge (any unit, only its sign matters) and the PDG id (its sign is ignored).
        Particles with pT = 0 have no defined eta and are dropped.
        """
        px, py, pz, energy = (np.asarray(array, dtype=np.float64) for array in (px, py, pz, energy))
        charged = np.asarray(charge) != 0
        abs_id = np.abs(np.asarray(pdg_id))
        config = self.config

        pt = np.hypot(px, py)
        has_direction = pt > 0
        eta = np.zeros_like(pt)
        eta[has_direction] = np.arcsinh(pz[has_direction] / pt[has_direction])
        phi = np.arctan2(py, px)

        in_tracker = has_direction & charged & (np.abs(eta) < config.track_abs_eta_max)
        is_track = in_tracker & (pt > config.track_pt_min_gev)
        in_calorimeter = has_direction & ~in_tracker & (abs_id != MUON_ID)
        electromagnetic = (abs_id == PHOTON_ID) | (abs_id == ELECTRON_ID)

        tracks = self._tracks(px[is_track], py[is_track], pz[is_track], energy[is_track])
        towers = self._towers(
            eta[in_calorimeter], phi[in_calorimeter], energy[in_calorimeter], electromagnetic[in_calorimeter]
        )
        return np.concatenate([tracks, towers])  # (constituents, 4)

    def _tracks(self, px, py, pz, energy) -> np.ndarray:
        if self.config.track_pt_resolution == 0 or len(px) == 0:
            return np.stack([px, py, pz, energy], axis=1)

        # Scaling the momentum keeps the direction and changes pT by the same factor.
        mass_squared = np.maximum(energy**2 - px**2 - py**2 - pz**2, 0.0)
        scale = _smear_log_normal(np.ones(len(px)), np.full(len(px), self.config.track_pt_resolution), self.rng)
        px, py, pz = px * scale, py * scale, pz * scale
        energy = np.sqrt(px**2 + py**2 + pz**2 + mass_squared)
        return np.stack([px, py, pz, energy], axis=1)

    def _towers(self, eta, phi, energy, electromagnetic) -> np.ndarray:
        config = self.config
        num_phi = config.num_phi_bins
        phi_width = 2 * np.pi / num_phi

        # Tower number = eta bin * num_phi + phi bin. Eta bins start at eta = 0, and phi = pi
        # (the upper edge) falls into the last phi bin.
        eta_bin = np.floor(eta / config.tower_size).astype(np.int64)
        phi_bin = np.clip(np.floor((phi + np.pi) / phi_width).astype(np.int64), 0, num_phi - 1)
        towers, tower_of_particle = np.unique(eta_bin * num_phi + phi_bin, return_inverse=True)

        ecal = np.bincount(tower_of_particle, weights=np.where(electromagnetic, energy, 0.0), minlength=len(towers))
        hcal = np.bincount(tower_of_particle, weights=np.where(electromagnetic, 0.0, energy), minlength=len(towers))
        ecal = _smear_log_normal(ecal, config.ecal.sigma_gev(ecal), self.rng)
        hcal = _smear_log_normal(hcal, config.hcal.sigma_gev(hcal), self.rng)
        tower_energy = ecal + hcal

        above_threshold = tower_energy >= config.tower_threshold_gev
        towers, tower_energy = towers[above_threshold], tower_energy[above_threshold]
        eta_centre = (towers // num_phi + 0.5) * config.tower_size
        phi_centre = -np.pi + (towers % num_phi + 0.5) * phi_width

        tower_pt = tower_energy / np.cosh(eta_centre)
        return np.stack(
            [
                tower_pt * np.cos(phi_centre),
                tower_pt * np.sin(phi_centre),
                tower_pt * np.sinh(eta_centre),
                tower_energy,
            ],
            axis=1,
        )


def _smear_log_normal(mean: np.ndarray, sigma: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw one log-normal value per entry with the given mean and standard deviation.

    One normal number is drawn per entry, zero means included, so the stream of random
    numbers depends only on the number of entries. Entries with mean <= 0 give 0.
    """
    normal = rng.standard_normal(len(mean))
    positive = mean > 0
    safe_mean = np.where(positive, mean, 1.0)
    width = np.sqrt(np.log1p((sigma / safe_mean) ** 2))
    smeared = np.exp(np.log(safe_mean) - 0.5 * width**2 + width * normal)
    return np.where(positive, smeared, 0.0)
