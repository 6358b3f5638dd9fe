"""Energy deposits of single particles: stepped tracks, electromagnetic showers, hadronic interactions.

Every function adds points to a `Deposits` collector: a position (cm), a deposited
energy (MeV) and the local dE/dx (MeV/cm) that Birks quenching needs. Energies in MeV,
lengths in cm, directions are unit vectors.

* Muons, charged pions and protons are stepped in `config.step_cm` steps. The kinetic
  energy along the track follows the CSDA range table of `energy_loss`. Each step is
  deflected by the Highland angle, and a Gamma(4) factor with mean 1 on its deposit
  approximates Landau straggling.
* Pions and protons interact after an exponential path with the configured interaction
  length. The kinetic energy left then goes 20-50 % to invisible channels (binding,
  neutrons), 10-40 % of the rest to a local blob of nuclear fragments, and the remainder to
  1-4 secondaries (p, pi+-, pi0) at forward-biased angles. Secondaries are simulated in
  turn, but a particle made in a second-generation interaction ends its own interaction
  in a local blob only.
* Electrons above the critical energy make a shower: longitudinal Gamma profile with b = 0.5
  and shower maximum t_max = ln(E / Ec) - 0.5 X0, lateral spread growing to one Moliere
  radius at t_max + 1 X0. Below Ec an electron is a short track losing
  dE/dx_mip + E / X0 per cm.
* Photons convert after an exponential path of mean 9/7 X0 and then shower like an
  electron from the conversion point. Seen from the photon's origin this puts the
  maximum about 1.3 X0 deeper than an electron's, close to the +0.5 - (-0.5) = 1 X0
  difference of the PDG parametrisation. pi0 decay at once into two photons.
* Neutrons travel an exponential path with the proton interaction length and give one
  recoil proton with 20-80 % of their kinetic energy, the rest is lost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from jetnu.sim.neutrino.config import DetectorConfig
from jetnu.sim.neutrino.energy_loss import (
    ELECTRON_MASS_MEV,
    csda_range_cm,
    electron_energy_at_mev,
    electron_range_cm,
    highland_theta0_rad,
    kinetic_at_range_mev,
    mip_dedx_mev_per_cm,
)
from jetnu.sim.neutrino.geometry import contains, distance_to_exit_cm
from jetnu.sim.neutrino.particles import MASSES_MEV, boost, decay_at_rest, isotropic_direction

STRAGGLING_SHAPE = 4.0  # shape of the Gamma factor on each step's deposit
SHOWER_B = 0.5  # slope parameter b of the longitudinal Gamma profile
SHOWER_POINTS_PER_MEV = 0.5  # deposit points per MeV of shower energy, between 20 and 4000
FRAGMENT_DEDX_MEV_PER_CM = 20.0  # dE/dx of nuclear fragments in a hadronic blob, for Birks
FRAGMENT_SPREAD_CM = 3.0  # Gaussian spread of a hadronic blob
MAX_INTERACTION_DEPTH = 2  # particles this many interactions deep make no further secondaries
MIN_TRACK_MEV = 1.0  # muons, pions and protons below this kinetic energy deposit it on the spot
MIN_SECONDARY_MEV = 20.0  # energy below which a hadronic interaction makes only a blob
# Particle kinds of hadronic secondaries and their odds.
SECONDARY_KINDS = ("p", "pi+", "pi-", "pi0")
SECONDARY_ODDS = (0.5, 0.175, 0.175, 0.15)


class Deposits:
    """Collector of energy deposits: points (cm), energies (MeV) and dE/dx (MeV/cm)."""

    def __init__(self) -> None:
        self._points: list[np.ndarray] = []
        self._energies: list[np.ndarray] = []
        self._dedx: list[np.ndarray] = []

    def add(self, points: np.ndarray, energies_mev: np.ndarray, dedx_mev_per_cm) -> None:
        """Add deposits at `points` (n, 3). `dedx_mev_per_cm` is one value or one per point."""
        energies_mev = np.asarray(energies_mev, dtype=np.float64)
        self._points.append(np.asarray(points, dtype=np.float64).reshape(-1, 3))
        self._energies.append(energies_mev)
        self._dedx.append(np.broadcast_to(np.asarray(dedx_mev_per_cm, dtype=np.float64), energies_mev.shape))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return all deposits as (points (n, 3), energies (n,), dE/dx (n,))."""
        if not self._points:
            return np.zeros((0, 3)), np.zeros(0), np.zeros(0)
        return np.concatenate(self._points), np.concatenate(self._energies), np.concatenate(self._dedx)

    @property
    def total_mev(self) -> float:
        """Sum of all deposited energies, MeV."""
        return float(sum(energies.sum() for energies in self._energies))


@dataclass(frozen=True)
class TrackEnd:
    """State of a stepped particle where its track ends."""

    position: np.ndarray  # (3,) cm
    direction: np.ndarray  # (3,) unit vector
    kinetic_mev: float  # kinetic energy left, MeV
    interacted: bool  # the track ended in a hadronic interaction


def perpendicular_basis(direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return unit vectors u, v such that (direction, u, v) is a right-handed orthonormal basis."""
    helper = np.array([1.0, 0.0, 0.0]) if abs(direction[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    first = np.cross(direction, helper)
    first /= np.linalg.norm(first)
    return first, np.cross(direction, first)


def scattered_directions(direction: np.ndarray, theta0: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw the step directions of a multiply scattered track, shape (n, 3). Step 0 keeps `direction`.

    The direction is tracked as spherical angles about a polar axis perpendicular to the
    start direction, so the walk starts on the equator, far from the poles. A kick (a, b) in
    the local frame adds a to the polar angle and b / sin(theta) to the azimuth. Both sums
    are cumulative sums, so no Python loop over steps is needed. The error per step is of
    second order in the kick.
    """
    polar_axis, side = perpendicular_basis(direction)
    kick_polar = rng.normal(0.0, 1.0, size=theta0.shape) * theta0
    kick_side = rng.normal(0.0, 1.0, size=theta0.shape) * theta0

    theta = math.pi / 2 + np.concatenate(([0.0], np.cumsum(kick_polar[:-1])))
    sin_theta = np.sin(theta)
    azimuth_steps = kick_side[:-1] / np.maximum(np.abs(sin_theta[:-1]), 1e-3)
    phi = np.concatenate(([0.0], np.cumsum(azimuth_steps)))

    return (
        (sin_theta * np.cos(phi))[:, None] * direction[None, :]
        + (sin_theta * np.sin(phi))[:, None] * side[None, :]
        + np.cos(theta)[:, None] * polar_axis[None, :]
    )


def step_track(
    kinetic_at_path: Callable[[np.ndarray], np.ndarray],
    length_cm: float,
    mass_mev: float,
    start: np.ndarray,
    direction: np.ndarray,
    rng: np.random.Generator,
    config: DetectorConfig,
    deposits: Deposits,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Step a charged particle over `length_cm` and deposit its energy loss.

    `kinetic_at_path` maps path lengths (cm) to kinetic energy (MeV). Returns the end
    position, the last direction and the kinetic energy at the end.
    """
    n_steps = max(1, math.ceil(length_cm / config.step_cm))
    path = np.minimum(np.arange(n_steps + 1) * config.step_cm, length_cm)  # step boundaries
    kinetic = kinetic_at_path(path)
    step_lengths = np.diff(path)
    energy_loss = np.maximum(kinetic[:-1] - kinetic[1:], 0.0)
    dedx = energy_loss / np.maximum(step_lengths, 1e-9)

    kinetic_mid = 0.5 * (kinetic[:-1] + kinetic[1:])
    momentum = np.sqrt(kinetic_mid * (kinetic_mid + 2 * mass_mev))
    beta = momentum / (kinetic_mid + mass_mev)
    theta0 = highland_theta0_rad(
        np.maximum(momentum, 1e-3), np.maximum(beta, 1e-3), step_lengths, config.radiation_length_cm
    )
    directions = scattered_directions(direction, np.minimum(theta0, 1.0), rng)  # (n_steps, 3)

    steps = directions * step_lengths[:, None]
    boundaries = start + np.concatenate((np.zeros((1, 3)), np.cumsum(steps, axis=0)))  # (n_steps + 1, 3)
    midpoints = boundaries[:-1] + 0.5 * steps

    fluctuation = rng.gamma(STRAGGLING_SHAPE, 1.0 / STRAGGLING_SHAPE, size=n_steps)
    deposits.add(midpoints, energy_loss * fluctuation, dedx)
    return boundaries[-1], directions[-1], float(kinetic[-1])


def _path_limit_cm(start: np.ndarray, direction: np.ndarray, config: DetectorConfig) -> float:
    # Scattering bends tracks, so allow some path beyond the straight-line exit. The readout
    # drops deposits outside the detector.
    return 1.1 * distance_to_exit_cm(start, direction, config) + 20.0


def charged_track(
    kind: str,
    kinetic_mev: float,
    start: np.ndarray,
    direction: np.ndarray,
    rng: np.random.Generator,
    config: DetectorConfig,
    deposits: Deposits,
    interaction_length_cm: float | None = None,
) -> TrackEnd:
    """Step a muon, pion or proton until it stops, interacts or leaves the detector."""
    mass = MASSES_MEV[kind]
    total_range = float(csda_range_cm(kinetic_mev, mass, config.density_g_cm3))
    interaction_path = math.inf if interaction_length_cm is None else rng.exponential(interaction_length_cm)
    length = min(total_range, interaction_path, _path_limit_cm(start, direction, config))
    if length <= 0:
        return TrackEnd(start, direction, kinetic_mev, False)

    def kinetic_at_path(path):
        return kinetic_at_range_mev(total_range - path, mass, config.density_g_cm3)

    end, last_direction, kinetic_left = step_track(
        kinetic_at_path, length, mass, start, direction, rng, config, deposits
    )
    interacted = interaction_path < total_range and interaction_path == length
    return TrackEnd(end, last_direction, kinetic_left, interacted)


def electron_track(
    energy_mev: float, start, direction, rng: np.random.Generator, config: DetectorConfig, deposits: Deposits
) -> None:
    """Step an electron below the critical energy until it stops."""
    mip = mip_dedx_mev_per_cm(config.density_g_cm3)
    x0 = config.radiation_length_cm
    total_range = float(electron_range_cm(energy_mev, mip, x0))
    length = min(total_range, _path_limit_cm(start, direction, config))

    def kinetic_at_path(path):
        return electron_energy_at_mev(path, energy_mev, mip, x0)

    step_track(kinetic_at_path, length, ELECTRON_MASS_MEV, start, direction, rng, config, deposits)


def shower_max_x0(energy_mev, critical_energy_mev: float, photon: bool = False) -> np.ndarray:
    """Depth of the shower maximum t_max = ln(E / Ec) - 0.5 (electron) or + 0.5 (photon), in X0, at least 0."""
    offset = 0.5 if photon else -0.5
    return np.maximum(np.log(np.asarray(energy_mev) / critical_energy_mev) + offset, 0.0)


def em_shower(
    energy_mev: float, start, direction, rng: np.random.Generator, config: DetectorConfig, deposits: Deposits
) -> None:
    """Deposit an electron-initiated shower as points drawn from its longitudinal and lateral profile."""
    x0 = config.radiation_length_cm
    t_max = float(shower_max_x0(energy_mev, config.critical_energy_mev))
    shape = 1.0 + SHOWER_B * t_max
    n_points = int(np.clip(energy_mev * SHOWER_POINTS_PER_MEV, 20, 4000))

    depth_x0 = rng.gamma(shape, 1.0 / SHOWER_B, size=n_points)
    # Core and halo: 85 % of the points within exp(0.25 R_M), 15 % within exp(1 R_M), about
    # 93 % inside one Moliere radius once the shower is fully developed.
    in_core = rng.uniform(size=n_points) < 0.85
    radius = rng.exponential(1.0, size=n_points) * np.where(in_core, 0.25, 1.0)
    radius *= config.moliere_radius_cm * np.minimum(1.0, depth_x0 / (t_max + 1.0))
    angle = rng.uniform(0.0, 2 * math.pi, size=n_points)

    first, second = perpendicular_basis(direction)
    lateral = (radius * np.cos(angle))[:, None] * first + (radius * np.sin(angle))[:, None] * second
    points = start + (depth_x0 * x0)[:, None] * direction + lateral
    energies = np.full(n_points, energy_mev / n_points)
    deposits.add(points, energies, mip_dedx_mev_per_cm(config.density_g_cm3))


def electron(energy_mev: float, start, direction, rng, config: DetectorConfig, deposits: Deposits) -> None:
    """Deposit an electron or positron: a shower above the critical energy, a track below."""
    if energy_mev >= config.critical_energy_mev:
        em_shower(energy_mev, start, direction, rng, config, deposits)
    else:
        electron_track(energy_mev, start, direction, rng, config, deposits)


def photon(energy_mev: float, start, direction, rng, config: DetectorConfig, deposits: Deposits) -> None:
    """Convert a photon after an exponential path of mean 9/7 X0, then deposit its pair as one electron."""
    conversion = start + rng.exponential(9.0 / 7.0 * config.radiation_length_cm) * direction
    if contains(conversion, config):
        electron(energy_mev, conversion, direction, rng, config, deposits)


def local_blob(energy_mev: float, position, rng, deposits: Deposits) -> None:
    """Deposit nuclear fragments around `position` as a few points with a Gaussian spread."""
    if energy_mev <= 0:
        return
    n_points = max(3, int(energy_mev / 5.0))
    points = position + rng.normal(0.0, FRAGMENT_SPREAD_CM, size=(n_points, 3))
    deposits.add(points, np.full(n_points, energy_mev / n_points), FRAGMENT_DEDX_MEV_PER_CM)


def forward_direction(direction: np.ndarray, rng: np.random.Generator, spread: float) -> np.ndarray:
    """Draw a direction near `direction`: their sum with `spread` times an isotropic vector, normalised."""
    new = direction + spread * isotropic_direction(rng)
    norm = np.linalg.norm(new)
    return direction.copy() if norm < 1e-9 else new / norm


def hadronic_interaction(
    kinetic_mev: float, position, direction, rng, config: DetectorConfig, deposits: Deposits, depth: int
) -> None:
    """Share the kinetic energy of an interacting hadron among losses, a local blob and secondaries."""
    visible = kinetic_mev * (1.0 - rng.uniform(0.2, 0.5))
    if visible < MIN_SECONDARY_MEV or depth >= MAX_INTERACTION_DEPTH:
        local_blob(visible, position, rng, deposits)
        return

    blob = visible * rng.uniform(0.1, 0.4)
    local_blob(blob, position, rng, deposits)

    remainder = visible - blob
    n_secondaries = min(1 + int(rng.poisson(remainder / 400.0)), 4)
    shares = rng.dirichlet(np.ones(n_secondaries)) * remainder
    kinds = rng.choice(SECONDARY_KINDS, size=n_secondaries, p=SECONDARY_ODDS)
    for kind, share in zip(kinds, shares):
        new_direction = forward_direction(direction, rng, spread=0.8)
        simulate_particle(str(kind), float(share), position, new_direction, rng, config, deposits, depth + 1)


def neutron(kinetic_mev: float, start, direction, rng, config: DetectorConfig, deposits, depth: int) -> None:
    """Travel an exponential path, then give one recoil proton with part of the kinetic energy."""
    scatter = start + rng.exponential(config.proton_interaction_length_cm) * direction
    if depth >= MAX_INTERACTION_DEPTH or not contains(scatter, config):
        return
    recoil = kinetic_mev * rng.uniform(0.2, 0.8)
    new_direction = forward_direction(direction, rng, spread=0.7)
    simulate_particle("p", recoil, scatter, new_direction, rng, config, deposits, depth + 1)


def neutral_pion(kinetic_mev: float, start, direction, rng, config: DetectorConfig, deposits: Deposits) -> None:
    """Decay a pi0 at its start point into two photons and deposit both."""
    mass = MASSES_MEV["pi0"]
    energy = kinetic_mev + mass
    momentum = math.sqrt(max(energy**2 - mass**2, 0.0))
    photons = boost(decay_at_rest(mass, [0.0, 0.0], rng), momentum * direction / energy)
    for four_momentum in photons:
        photon_direction = four_momentum[1:] / np.linalg.norm(four_momentum[1:])
        photon(float(four_momentum[0]), start, photon_direction, rng, config, deposits)


def simulate_particle(
    kind: str,
    kinetic_mev: float,
    start,
    direction,
    rng: np.random.Generator,
    config: DetectorConfig,
    deposits: Deposits,
    depth: int = 0,
) -> None:
    """Deposit the energy of one particle of `kind` ("mu", "e", "gamma", "pi+", "pi-", "pi0", "p", "n", "nu").

    `kinetic_mev` is the kinetic energy (the total energy for photons). `depth` counts the
    hadronic interactions that led to this particle.
    """
    if kind not in MASSES_MEV:
        raise ValueError(f"unknown particle kind {kind!r}, expected one of {sorted(MASSES_MEV)}")
    start = np.asarray(start, dtype=np.float64)
    direction = np.asarray(direction, dtype=np.float64)
    direction = direction / np.linalg.norm(direction)

    if kind == "nu" or kinetic_mev <= 0:
        return
    if kind == "pi0":
        neutral_pion(kinetic_mev, start, direction, rng, config, deposits)
    elif kind == "gamma":
        photon(kinetic_mev, start, direction, rng, config, deposits)
    elif kind == "e":
        electron(kinetic_mev, start, direction, rng, config, deposits)
    elif kind == "n":
        neutron(kinetic_mev, start, direction, rng, config, deposits, depth)
    elif kinetic_mev < MIN_TRACK_MEV:
        local_blob(kinetic_mev, start, rng, deposits)
    elif kind == "mu":
        charged_track(kind, kinetic_mev, start, direction, rng, config, deposits)
    else:
        length = config.proton_interaction_length_cm if kind == "p" else config.pion_interaction_length_cm
        end = charged_track(kind, kinetic_mev, start, direction, rng, config, deposits, length)
        if end.interacted:
            hadronic_interaction(end.kinetic_mev, end.position, end.direction, rng, config, deposits, depth)
