"""Final-state particles of each event class: neutrino interactions and cosmic muons.

A particle is a (kind, four-momentum) pair, with four-momenta (E, px, py, pz) in MeV and
the beam along +z. Neutrino interactions happen on a free nucleon at rest: no Fermi
motion, binding energy or final-state interactions. Two channels:

* quasi-elastic (nu_l n -> l- p for CC, nu N -> nu N for NC): Q^2 from the dipole form
  factor, dsigma/dQ^2 ~ (1 + Q^2 / M_A^2)^-4 with M_A = 1.0 GeV. The energy transfer nu
  follows from the nucleon masses (nu = Q^2 / (2 M) for equal masses).
* inelastic (resonance and DIS merged): Bjorken x from a valence-like Beta(0.5, 4),
  inelasticity y from dsigma/dy ~ 1 + 0.2 (1 - y)^2, Q^2 = 2 M E x y, with
  W > M + m_pi. The hadronic system of mass W decays into one nucleon and
  1 + Poisson(1.3 ln(W^2 / (1.2 GeV)^2)) pions, each pi+, pi- or pi0 with equal odds
  (charge conservation not enforced), by sequential isotropic two-body decays.

The quasi-elastic share is sigma_QE / (sigma_QE + sigma_inelastic) with sigma_QE flat at
0.45 and sigma_inelastic = 0.67 (E - 0.3 GeV), both in units of 1e-38 cm^2 per nucleon.
These are rough estimates of the nu_mu CC cross sections between 0.5 and 5 GeV, and give
about 50 % quasi-elastic events at 1 GeV and 28 % at 2 GeV. NC events use the same
kinematics with an invisible outgoing neutrino.
"""

from __future__ import annotations

import math

import numpy as np

from jetnu.sim.neutrino.config import DetectorConfig
from jetnu.sim.neutrino.energy_loss import (
    ELECTRON_MASS_MEV,
    MUON_MASS_MEV,
    NEUTRON_MASS_MEV,
    PI0_MASS_MEV,
    PION_MASS_MEV,
    PROTON_MASS_MEV,
)

# Masses of the particle kinds that `simulate_particle` accepts, MeV.
MASSES_MEV: dict[str, float] = {
    "mu": MUON_MASS_MEV,
    "e": ELECTRON_MASS_MEV,
    "gamma": 0.0,
    "pi+": PION_MASS_MEV,
    "pi-": PION_MASS_MEV,
    "pi0": PI0_MASS_MEV,
    "p": PROTON_MASS_MEV,
    "n": NEUTRON_MASS_MEV,
    "nu": 0.0,
}

AXIAL_MASS_MEV = 1000.0
_QE_CROSS_SECTION = 0.45  # 1e-38 cm^2 per nucleon
_INELASTIC_SLOPE_PER_GEV = 0.67  # 1e-38 cm^2 per nucleon per GeV
_INELASTIC_ONSET_GEV = 0.3
_ANTIQUARK_FRACTION = 0.2  # weight of the (1 - y)^2 term in dsigma/dy
# Pions beyond the first: Poisson with mean slope * ln(W^2 / reference^2), 0 below the reference.
_PION_MULTIPLICITY_SLOPE = 1.3
_DELTA_REFERENCE_MEV = 1200.0
_MAX_PIONS = 8
_MAX_TRIES = 1000


def unit_vector(theta: float, phi: float) -> np.ndarray:
    """Return the direction with polar angle `theta` from +z and azimuth `phi` around it, shape (3,)."""
    sin_theta = math.sin(theta)
    return np.array([sin_theta * math.cos(phi), sin_theta * math.sin(phi), math.cos(theta)])


def isotropic_direction(rng: np.random.Generator) -> np.ndarray:
    """Draw a direction uniformly on the unit sphere, shape (3,)."""
    return unit_vector(math.acos(rng.uniform(-1.0, 1.0)), rng.uniform(0.0, 2 * math.pi))


def boost(four_momenta: np.ndarray, velocity: np.ndarray) -> np.ndarray:
    """Lorentz-boost four-momenta of shape (n, 4) by the 3-velocity `velocity` (units of c)."""
    beta2 = float(velocity @ velocity)
    if beta2 <= 0.0:
        return four_momenta.copy()
    gamma = 1.0 / math.sqrt(1.0 - beta2)
    energy = four_momenta[:, 0]
    momentum = four_momenta[:, 1:]
    parallel = momentum @ velocity  # (n,) beta . p
    coefficient = (gamma - 1.0) * parallel / beta2 + gamma * energy
    boosted = np.empty_like(four_momenta)
    boosted[:, 0] = gamma * (energy + parallel)
    boosted[:, 1:] = momentum + coefficient[:, None] * velocity[None, :]
    return boosted


def two_body_momentum(parent_mev: float, mass_a: float, mass_b: float) -> float:
    """Return the momentum of either daughter in the rest frame of a two-body decay, MeV."""
    term = (parent_mev**2 - (mass_a + mass_b) ** 2) * (parent_mev**2 - (mass_a - mass_b) ** 2)
    return math.sqrt(max(term, 0.0)) / (2.0 * parent_mev)


def decay_at_rest(mass_mev: float, daughter_masses: list[float], rng: np.random.Generator) -> np.ndarray:
    """Split a system of `mass_mev` at rest into daughters of the given masses, four-momenta (n, 4).

    Sequential isotropic two-body decays with intermediate masses spaced by sorted uniform
    numbers (the Raubold-Lynch method without its phase-space weight), so the momenta are
    close to but not exactly n-body phase space.
    """
    masses = np.asarray(daughter_masses, dtype=np.float64)
    n = len(masses)
    if n == 1:
        return np.array([[mass_mev, 0.0, 0.0, 0.0]])

    # Intermediate systems: daughters 0..k together have mass cumulative[k] + fraction[k] * excess.
    excess = mass_mev - masses.sum()
    fractions = np.concatenate(([0.0], np.sort(rng.uniform(size=n - 2)), [1.0]))
    systems = np.cumsum(masses) + fractions * excess  # (n,), the last equals mass_mev

    four_momenta = np.zeros((n, 4))
    for k in range(1, n):
        # System k -> (system k-1, daughter k), isotropic in the rest frame of system k.
        momentum = two_body_momentum(systems[k], systems[k - 1], masses[k])
        direction = isotropic_direction(rng)
        if k == 1:
            # System 0 is daughter 0 itself, which may be massless, so it is set directly.
            four_momenta[0, 0] = math.hypot(momentum, masses[0])
            four_momenta[0, 1:] = -momentum * direction
        else:
            recoil_velocity = -momentum * direction / math.hypot(momentum, systems[k - 1])
            four_momenta[:k] = boost(four_momenta[:k], recoil_velocity)
        four_momenta[k, 0] = math.hypot(momentum, masses[k])
        four_momenta[k, 1:] = momentum * direction
    return four_momenta


def sample_nu_energy_gev(rng: np.random.Generator, config: DetectorConfig) -> float:
    """Draw a neutrino energy from the log-normal spectrum, truncated to the configured range, GeV."""
    width = config.nu_energy_log_width
    log_median = math.log(config.nu_energy_peak_gev) + width**2  # mode of a log-normal: exp(mu - sigma^2)
    for _ in range(_MAX_TRIES):
        energy = math.exp(rng.normal(log_median, width))
        if config.nu_energy_min_gev <= energy <= config.nu_energy_max_gev:
            return energy
    raise RuntimeError(
        f"the neutrino spectrum (peak {config.nu_energy_peak_gev} GeV, log width {width}) puts almost no events "
        f"between {config.nu_energy_min_gev} and {config.nu_energy_max_gev} GeV"
    )


def quasi_elastic_fraction(energy_gev: float) -> float:
    """Return the share of quasi-elastic interactions at this neutrino energy."""
    inelastic = _INELASTIC_SLOPE_PER_GEV * max(energy_gev - _INELASTIC_ONSET_GEV, 0.0)
    return _QE_CROSS_SECTION / (_QE_CROSS_SECTION + inelastic)


def _sample_quasi_elastic(energy: float, lepton_mass: float, target_mass: float, final_mass: float, rng):
    """Draw (Q^2 MeV^2, nu MeV) of a quasi-elastic interaction, or None when the draw is unphysical."""
    q2_max = 4 * target_mass * energy**2 / (target_mass + 2 * energy)
    x_max = q2_max / AXIAL_MASS_MEV**2
    # Inverse CDF of (1 + x)^-4 on [0, x_max], x = Q^2 / M_A^2.
    u = rng.uniform()
    tail = 1.0 - u * (1.0 - (1.0 + x_max) ** -3)
    q2 = (tail ** (-1.0 / 3.0) - 1.0) * AXIAL_MASS_MEV**2
    # W = final_mass: W^2 = M^2 + 2 M nu - Q^2 fixes nu.
    nu = (q2 + final_mass**2 - target_mass**2) / (2 * target_mass)
    if nu <= 0 or energy - nu <= lepton_mass:
        return None
    return q2, nu


def _sample_inelastic(energy: float, lepton_mass: float, target_mass: float, rng):
    """Draw (Q^2 MeV^2, nu MeV) of an inelastic interaction, or None when the draw fails the cuts."""
    x = rng.beta(0.5, 4.0)
    # Rejection from 1 + r (1 - y)^2, whose maximum is 1 + r at y = 0.
    while True:
        y = rng.uniform()
        if rng.uniform() * (1 + _ANTIQUARK_FRACTION) <= 1 + _ANTIQUARK_FRACTION * (1 - y) ** 2:
            break
    nu = y * energy
    q2 = 2 * target_mass * energy * x * y
    w2 = target_mass**2 + 2 * target_mass * nu - q2
    # The heavier nucleon plus one pion must fit, whichever nucleon comes out.
    if w2 <= (NEUTRON_MASS_MEV + PION_MASS_MEV + 1.0) ** 2 or energy - nu <= lepton_mass:
        return None
    return q2, nu


def _lepton_cos_theta(energy: float, lepton_energy: float, lepton_mass: float, q2: float) -> float | None:
    """Return cos(theta) of the lepton from Q^2 = 2 E (E_l - p_l cos theta) - m_l^2, None when unphysical."""
    lepton_momentum = math.sqrt(lepton_energy**2 - lepton_mass**2)
    cos_theta = (2 * energy * lepton_energy - lepton_mass**2 - q2) / (2 * energy * lepton_momentum)
    return cos_theta if -1.0 <= cos_theta <= 1.0 else None


def hadron_kinds(invariant_mass: float, nucleon: str, rng: np.random.Generator) -> list[str]:
    """Choose the hadrons of an inelastic system: the nucleon first, then at least one pion."""
    mean_extra = _PION_MULTIPLICITY_SLOPE * max(math.log(invariant_mass**2 / _DELTA_REFERENCE_MEV**2), 0.0)
    n_pions = 1 + int(rng.poisson(mean_extra))
    # Counting every pion at the charged mass keeps the sum below W, because a pi0 is lighter.
    affordable = int((invariant_mass - MASSES_MEV[nucleon]) // PION_MASS_MEV)
    n_pions = max(1, min(n_pions, affordable, _MAX_PIONS))
    pions = [("pi+", "pi-", "pi0")[index] for index in rng.integers(0, 3, size=n_pions)]
    return [nucleon, *pions]


def _random_nucleon(rng: np.random.Generator) -> str:
    return ("p", "n")[int(rng.integers(0, 2))]


def neutrino_interaction(
    energy_gev: float, lepton: str, rng: np.random.Generator
) -> tuple[list[tuple[str, np.ndarray]], float, float]:
    """Draw the final state of a neutrino of `energy_gev` along +z on a nucleon at rest.

    `lepton` is "mu" (nu_mu CC), "e" (nu_e CC) or "nu" (NC, the outgoing neutrino is kept
    in the list and is invisible to the detector). Returns the particles (outgoing lepton
    first), the lepton energy in GeV and the inelasticity y = nu / E. The four-momenta add
    up to those of the neutrino and the target nucleon, a proton or a neutron.
    """
    energy = energy_gev * 1000.0
    lepton_mass = MASSES_MEV[lepton]
    charged_current = lepton != "nu"
    quasi_elastic = rng.uniform() < quasi_elastic_fraction(energy_gev)

    # CC quasi-elastic: nu n -> l- p. NC elastic keeps the struck nucleon. Inelastic: any nucleons.
    if quasi_elastic and charged_current:
        target, nucleon = "n", "p"
    elif quasi_elastic:
        target = nucleon = _random_nucleon(rng)
    else:
        target, nucleon = _random_nucleon(rng), _random_nucleon(rng)
    target_mass = MASSES_MEV[target]

    for _ in range(_MAX_TRIES):
        if quasi_elastic:
            draw = _sample_quasi_elastic(energy, lepton_mass, target_mass, MASSES_MEV[nucleon], rng)
        else:
            draw = _sample_inelastic(energy, lepton_mass, target_mass, rng)
        if draw is None:
            continue
        q2, nu = draw
        lepton_energy = energy - nu
        cos_theta = _lepton_cos_theta(energy, lepton_energy, lepton_mass, q2)
        if cos_theta is not None:
            break
    else:
        raise RuntimeError(f"no valid interaction kinematics found for a {energy_gev:.3f} GeV neutrino")

    lepton_momentum = math.sqrt(lepton_energy**2 - lepton_mass**2)
    lepton_direction = unit_vector(math.acos(cos_theta), rng.uniform(0.0, 2 * math.pi))
    lepton_four = np.concatenate(([lepton_energy], lepton_momentum * lepton_direction))

    # Hadronic system: four-momentum transfer q = p_nu - p_lepton on the target at rest.
    hadron_energy = nu + target_mass
    hadron_momentum = np.array([0.0, 0.0, energy]) - lepton_four[1:]
    invariant_mass = math.sqrt(max(hadron_energy**2 - hadron_momentum @ hadron_momentum, 0.0))

    kinds = [nucleon] if quasi_elastic else hadron_kinds(invariant_mass, nucleon, rng)
    masses = [MASSES_MEV[kind] for kind in kinds]
    # Rounding alone can put a quasi-elastic W a hair below the nucleon mass.
    invariant_mass = max(invariant_mass, sum(masses))
    rest_frame = decay_at_rest(invariant_mass, masses, rng)
    lab = boost(rest_frame, hadron_momentum / hadron_energy)

    particles = [(lepton, lepton_four), *zip(kinds, lab)]
    return particles, lepton_energy / 1000.0, nu / energy


def cosmic_muon(rng: np.random.Generator, config: DetectorConfig) -> tuple[np.ndarray, np.ndarray, float]:
    """Draw a cosmic muon entering through the top face: (entry point cm, direction, energy GeV).

    The intensity per solid angle falls as cos^2(zenith), so the rate through the
    horizontal top face goes as cos^3: cos(zenith) = u^(1/4). The energy follows
    dN/dE ~ E^-index between the configured limits.
    """
    index = config.cosmic_spectral_index
    low = config.cosmic_energy_min_gev ** (1 - index)
    high = config.cosmic_energy_max_gev ** (1 - index)
    energy = (low + rng.uniform() * (high - low)) ** (1 / (1 - index))

    cos_zenith = rng.uniform() ** 0.25
    sin_zenith = math.sqrt(1.0 - cos_zenith**2)
    azimuth = rng.uniform(0.0, 2 * math.pi)
    direction = np.array([sin_zenith * math.cos(azimuth), -cos_zenith, sin_zenith * math.sin(azimuth)])

    half = config.width_cm / 2
    entry = np.array([rng.uniform(-half, half), half * (1 - 1e-9), rng.uniform(0.0, config.length_cm)])
    return entry, direction, energy
