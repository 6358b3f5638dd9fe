"""Ionisation energy loss (Bethe formula), CSDA range tables and multiple scattering (Highland).

The medium is one homogeneous hydrocarbon-like material: Z/A = 0.55 and mean excitation
energy I = 65 eV, values between those of mineral oil and polystyrene, with the
Sternheimer density-effect parametrisation and polystyrene-like parameters. At 1 g/cm3 a
minimum-ionising muon loses about 2.0 MeV/cm. Energies in MeV, lengths in cm.
"""

from __future__ import annotations

import functools

import numpy as np

ELECTRON_MASS_MEV = 0.51099895
MUON_MASS_MEV = 105.6583755
PION_MASS_MEV = 139.57039
PI0_MASS_MEV = 134.9768
PROTON_MASS_MEV = 938.27209
NEUTRON_MASS_MEV = 939.56542

_BETHE_K = 0.307075  # 4 pi N_A r_e^2 m_e c^2, MeV cm2/mol
_Z_OVER_A = 0.55  # mol/g
_MEAN_EXCITATION_MEV = 65.0e-6
# Sternheimer density-effect parameters C-bar, x0, x1, a, k for polystyrene.
# NOTE: entered without a reference table at hand. They lower dE/dx of a minimum-ionising
# muon by about 3 % and matter little below a few GeV.
_STERNHEIMER = (3.2999, 0.1647, 2.5031, 0.1646, 3.2224)

# Kinetic-energy grid of the range tables, MeV. Below the first entry the range is
# taken as T / (dE/dx at that entry), which is under 0.01 mm for every particle here.
_TABLE_KINETIC_MEV = np.geomspace(0.05, 2.0e5, 1200)


def _density_effect(beta_gamma: np.ndarray) -> np.ndarray:
    c_bar, x0, x1, a, k = _STERNHEIMER
    x = np.log10(np.maximum(beta_gamma, 1e-12))
    delta = 2 * np.log(10) * x - c_bar
    middle = (x >= x0) & (x < x1)
    delta = np.where(middle, delta + a * np.clip(x1 - x, 0, None) ** k, delta)
    return np.where(x >= x0, delta, 0.0)


def _bethe_formula(kinetic: np.ndarray, mass_mev: float, density_g_cm3: float) -> np.ndarray:
    gamma = 1.0 + kinetic / mass_mev
    beta2 = 1.0 - 1.0 / gamma**2
    beta_gamma2 = beta2 * gamma**2
    mass_ratio = ELECTRON_MASS_MEV / mass_mev
    max_transfer = 2 * ELECTRON_MASS_MEV * beta_gamma2 / (1 + 2 * gamma * mass_ratio + mass_ratio**2)

    log_term = 0.5 * np.log(2 * ELECTRON_MASS_MEV * beta_gamma2 * max_transfer / _MEAN_EXCITATION_MEV**2)
    stopping = _BETHE_K * _Z_OVER_A / beta2 * (log_term - beta2 - _density_effect(np.sqrt(beta_gamma2)) / 2)
    return stopping * density_g_cm3


@functools.lru_cache(maxsize=32)
def _bethe_peak(mass_mev: float, density_g_cm3: float) -> tuple[float, float]:
    """(kinetic energy MeV, dE/dx MeV/cm) at the maximum of the Bethe formula."""
    kinetic = np.geomspace(1e-3, 10.0, 4000) * (mass_mev / PROTON_MASS_MEV)
    dedx = _bethe_formula(kinetic, mass_mev, density_g_cm3)
    index = int(np.argmax(dedx))
    return float(kinetic[index]), float(dedx[index])


def bethe_dedx_mev_per_cm(kinetic_mev, mass_mev: float, density_g_cm3: float) -> np.ndarray:
    """Return the mean ionisation loss of a singly charged particle, MeV/cm (Bethe formula with density effect).

    Below the formula's maximum (near beta = 0.02), where it turns over and fails, the loss
    is held at that maximum.
    """
    kinetic = np.asarray(kinetic_mev, dtype=np.float64)
    peak_kinetic, peak_dedx = _bethe_peak(mass_mev, density_g_cm3)
    safe_kinetic = np.maximum(kinetic, peak_kinetic)
    return np.where(kinetic < peak_kinetic, peak_dedx, _bethe_formula(safe_kinetic, mass_mev, density_g_cm3))


@functools.lru_cache(maxsize=32)
def range_table(mass_mev: float, density_g_cm3: float) -> tuple[np.ndarray, np.ndarray]:
    """Return (kinetic energy MeV, CSDA range cm) on a log grid, both increasing, for one particle mass."""
    kinetic = _TABLE_KINETIC_MEV
    dedx = bethe_dedx_mev_per_cm(kinetic, mass_mev, density_g_cm3)
    inverse = 1.0 / dedx

    # Trapezoidal integral of dT / (dE/dx), starting from the range of the first entry.
    pieces = 0.5 * (inverse[1:] + inverse[:-1]) * np.diff(kinetic)
    ranges = np.empty_like(kinetic)
    ranges[0] = kinetic[0] * inverse[0]
    ranges[1:] = ranges[0] + np.cumsum(pieces)
    return kinetic, ranges


def csda_range_cm(kinetic_mev, mass_mev: float, density_g_cm3: float) -> np.ndarray:
    """Return the continuous-slowing-down (CSDA) range of a particle with this kinetic energy, cm."""
    kinetic, ranges = range_table(mass_mev, density_g_cm3)
    return np.interp(np.log(np.maximum(kinetic_mev, 1e-6)), np.log(kinetic), ranges, left=0.0)


def kinetic_at_range_mev(residual_range_cm, mass_mev: float, density_g_cm3: float) -> np.ndarray:
    """Return the kinetic energy of a particle that has `residual_range_cm` left to travel, MeV."""
    kinetic, ranges = range_table(mass_mev, density_g_cm3)
    residual = np.asarray(residual_range_cm, dtype=np.float64)
    # Linear in range below the first entry, where dE/dx is taken as constant.
    first = kinetic[0] * residual / ranges[0]
    return np.where(residual < ranges[0], np.maximum(first, 0.0), np.interp(residual, ranges, kinetic))


def mip_dedx_mev_per_cm(density_g_cm3: float) -> float:
    """Return the energy loss of a minimum-ionising muon (beta gamma = 3.5), MeV/cm."""
    kinetic = MUON_MASS_MEV * (np.sqrt(1 + 3.5**2) - 1)
    return float(bethe_dedx_mev_per_cm(kinetic, MUON_MASS_MEV, density_g_cm3))


def highland_theta0_rad(momentum_mev, beta, step_cm, radiation_length_cm: float) -> np.ndarray:
    """Return the width of the projected multiple-scattering angle after one step (Highland, charge 1), rad.

    With its logarithmic term the formula is accurate to about 11 % (Lynch and Dahl,
    NIM B 58 (1991) 6). Because of that term, applying it per step of about 0.02 X0 gives a
    somewhat smaller spread over a long track than one application over the whole length.
    """
    thickness = np.asarray(step_cm) / radiation_length_cm
    beta = np.asarray(beta)
    correction = 1.0 + 0.038 * np.log(np.maximum(thickness / beta**2, 1e-12))
    return 13.6 / (beta * np.asarray(momentum_mev)) * np.sqrt(thickness) * np.maximum(correction, 0.0)


def electron_range_cm(energy_mev, mip_dedx: float, radiation_length_cm: float) -> np.ndarray:
    """Return the range of an electron losing `mip_dedx` MeV/cm to ionisation plus E / X0 to radiation, cm.

    Solves dE/ds = -(a + E / X0): R = X0 ln(1 + E0 / (a X0)). The radiated energy is
    counted as deposited along the track, which holds for an electron below the critical
    energy whose bremsstrahlung photons convert nearby.
    """
    energy = np.asarray(energy_mev, dtype=np.float64)
    return radiation_length_cm * np.log1p(energy / (mip_dedx * radiation_length_cm))


def electron_energy_at_mev(path_cm, energy_mev: float, mip_dedx: float, radiation_length_cm: float) -> np.ndarray:
    """Return the energy left to an electron after `path_cm` under the loss of `electron_range_cm`, MeV."""
    scale = mip_dedx * radiation_length_cm
    energy = (energy_mev + scale) * np.exp(-np.asarray(path_cm) / radiation_length_cm) - scale
    return np.maximum(energy, 0.0)
