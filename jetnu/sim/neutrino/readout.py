"""Readout chain: deposits -> cells -> quenched light -> photoelectrons -> ADC counts -> hits.

Per deposit, Birks' law quenches the light, E_q = E / (1 + kB dE/dx), and the fibre
attenuates it by exp(-d / L), with d the distance along the cell to its readout end. The
light of a cell is summed, converted to a mean number of photoelectrons by the light
yield, drawn from a Poisson distribution, scaled to ADC counts, smeared by Gaussian
electronics noise, rounded and clipped at saturation. Cells below the ADC threshold give no
hit. A hit's `energy` is the true deposited energy in the cell, before quenching.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jetnu.sim.neutrino.config import DetectorConfig
from jetnu.sim.neutrino.geometry import locate, readout_distance_cm


@dataclass(frozen=True)
class Hits:
    """Hits of one event, sorted by plane then cell, with one entry per hit in every array."""

    view: np.ndarray  # int32, 0 = XZ, 1 = YZ
    plane: np.ndarray  # int32
    cell: np.ndarray  # int32
    adc: np.ndarray  # float32, ADC counts
    energy: np.ndarray  # float32, deposited energy, GeV

    def __len__(self) -> int:
        return len(self.plane)


def birks_quenched_mev(energy_mev, dedx_mev_per_cm, birks_cm_per_mev: float) -> np.ndarray:
    """Return the scintillation-equivalent energy after Birks quenching, E / (1 + kB dE/dx), MeV."""
    return np.asarray(energy_mev) / (1.0 + birks_cm_per_mev * np.asarray(dedx_mev_per_cm))


def mean_photoelectrons(energy_mev, dedx_mev_per_cm, distance_cm, config: DetectorConfig) -> np.ndarray:
    """Return the mean number of photoelectrons from deposits at `distance_cm` from the readout end."""
    quenched = birks_quenched_mev(energy_mev, dedx_mev_per_cm, config.birks_cm_per_mev)
    attenuation = np.exp(-np.asarray(distance_cm) / config.attenuation_length_cm)
    return quenched * attenuation * config.light_yield_pe_per_mev


def digitise(mean_pe: np.ndarray, rng: np.random.Generator, config: DetectorConfig) -> np.ndarray:
    """Draw ADC counts for cells with these mean photoelectron numbers: Poisson, gain, noise, rounding, saturation."""
    photoelectrons = rng.poisson(np.asarray(mean_pe, dtype=np.float64))
    adc = photoelectrons * config.adc_per_pe
    if config.noise_adc > 0:
        adc = adc + rng.normal(0.0, config.noise_adc, size=adc.shape)
    return np.clip(np.rint(adc), 0.0, config.adc_max)


def read_out(
    points: np.ndarray,
    energies_mev: np.ndarray,
    dedx_mev_per_cm: np.ndarray,
    rng: np.random.Generator,
    config: DetectorConfig,
) -> Hits:
    """Turn deposits (points (n, 3) cm, energies MeV, dE/dx MeV/cm) into the hits above threshold."""
    plane, view, cell, inside = locate(points, config)
    keep = inside & (energies_mev > 0)
    plane, view, cell = plane[keep], view[keep], cell[keep]
    points, energies_mev, dedx_mev_per_cm = points[keep], energies_mev[keep], dedx_mev_per_cm[keep]

    light = mean_photoelectrons(energies_mev, dedx_mev_per_cm, readout_distance_cm(points, view, config), config)

    # One entry per (plane, cell), which np.unique sorts by plane, then cell.
    keys, index = np.unique(plane * config.n_cells + cell, return_inverse=True)
    cell_energy_mev = np.bincount(index, weights=energies_mev, minlength=len(keys))
    cell_light = np.bincount(index, weights=light, minlength=len(keys))
    adc = digitise(cell_light, rng, config)

    above = adc >= config.threshold_adc
    keys = keys[above]
    hit_plane = keys // config.n_cells
    return Hits(
        view=(hit_plane & 1).astype(np.int32),
        plane=hit_plane.astype(np.int32),
        cell=(keys % config.n_cells).astype(np.int32),
        adc=adc[above].astype(np.float32),
        energy=(cell_energy_mev[above] / 1000.0).astype(np.float32),
    )
