"""Settings of the NOvA-like detector simulation: geometry, material, readout and event physics.

Every field carries its unit in its name or in its ``help`` metadata, which the command
line (`python -m jetnu.generate neutrino`) shows as the option's help text.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field


# Integer fields and their smallest allowed values. All other fields are floats.
_INTEGER_FIELDS = {"n_planes": 2, "n_cells": 2, "min_hits": 0}


def _setting(default, help_text: str):
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class DetectorConfig:
    """Detector and physics settings of a neutrino sample. Lengths in cm, energies as named.

    The defaults describe a detector with the cross-section of the NOvA far detector
    (384 cells of 3.9 cm per plane, 15.0 m) and half its length (448 of 896 planes, 29.6 m).
    """

    # Geometry. Planes alternate orientation: even planes have vertical cells (XZ view,
    # the cell number measures x), odd planes horizontal cells (YZ view, measures y).
    n_planes: int = _setting(448, "planes along the beam axis z, both views counted")
    n_cells: int = _setting(384, "cells per plane, in both views")
    cell_width_cm: float = _setting(3.9, "cell pitch across a plane, cm")
    plane_depth_cm: float = _setting(6.6, "plane pitch along the beam, cm")

    # Material, treated as one homogeneous medium (liquid scintillator and PVC together).
    density_g_cm3: float = _setting(1.0, "mean density of the detector medium, g/cm3")
    radiation_length_cm: float = _setting(44.0, "radiation length X0 of the medium, cm (0.15 X0 per 6.6 cm plane)")
    critical_energy_mev: float = _setting(90.0, "critical energy Ec of the medium, MeV")
    proton_interaction_length_cm: float = _setting(
        80.0, "mean free path of protons and neutrons before a hadronic interaction, cm"
    )
    pion_interaction_length_cm: float = _setting(
        110.0, "mean free path of charged pions before a hadronic interaction, cm"
    )
    step_cm: float = _setting(1.0, "step length of charged tracks, cm")

    # Readout chain: Birks quenching, fibre attenuation, photo-statistics, digitisation.
    birks_cm_per_mev: float = _setting(0.01, "Birks constant kB, cm/MeV")
    light_yield_pe_per_mev: float = _setting(
        8.0, "photoelectrons per MeV of quenched energy at the readout end of a cell"
    )
    attenuation_length_cm: float = _setting(900.0, "light attenuation length along a cell, cm")
    adc_per_pe: float = _setting(8.0, "ADC counts per photoelectron")
    noise_adc: float = _setting(4.0, "Gaussian electronics noise per hit, standard deviation in ADC counts")
    threshold_adc: float = _setting(20.0, "hits below this many ADC counts are dropped")
    adc_max: float = _setting(4095.0, "ADC saturation value, counts")
    min_hits: int = _setting(3, "events with fewer hits are drawn again, like a trigger")

    # Neutrino events: truncated log-normal energy spectrum, vertex uniform in the fiducial volume.
    nu_energy_peak_gev: float = _setting(2.0, "most probable neutrino energy (mode of the log-normal), GeV")
    nu_energy_log_width: float = _setting(0.35, "standard deviation of ln(E) of the log-normal spectrum")
    nu_energy_min_gev: float = _setting(0.5, "lowest neutrino energy, GeV")
    nu_energy_max_gev: float = _setting(5.0, "highest neutrino energy, GeV")
    fiducial_side_margin_cm: float = _setting(
        100.0, "distance of the fiducial volume from the top, bottom and side walls, cm"
    )
    fiducial_front_margin_cm: float = _setting(100.0, "distance of the fiducial volume from the first plane, cm")
    fiducial_back_margin_cm: float = _setting(1200.0, "distance of the fiducial volume from the last plane, cm")

    # Cosmic muons: power-law energy spectrum, entering through the top face.
    cosmic_energy_min_gev: float = _setting(1.0, "lowest cosmic-muon energy, GeV")
    cosmic_energy_max_gev: float = _setting(100.0, "highest cosmic-muon energy, GeV")
    cosmic_spectral_index: float = _setting(2.7, "cosmic-muon spectrum dN/dE ~ E^-index")

    def __post_init__(self):
        for name, minimum in _INTEGER_FIELDS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
                raise ValueError(f"{name} must be an integer of at least {minimum}, got {value!r}")

        non_negative = ("birks_cm_per_mev", "noise_adc", "threshold_adc")
        margins = ("fiducial_side_margin_cm", "fiducial_front_margin_cm", "fiducial_back_margin_cm")
        for spec in dataclasses.fields(self):
            if spec.name in _INTEGER_FIELDS:
                continue
            value = getattr(self, spec.name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise ValueError(f"{spec.name} must be a finite number, got {value!r}")
            if spec.name in non_negative or spec.name in margins:
                if value < 0:
                    raise ValueError(f"{spec.name} must be at least 0, got {value!r}")
            elif not value > 0:
                raise ValueError(f"{spec.name} must be positive, got {value!r}")

        if not self.nu_energy_min_gev <= self.nu_energy_peak_gev <= self.nu_energy_max_gev:
            raise ValueError(
                "the neutrino spectrum needs nu_energy_min_gev <= nu_energy_peak_gev <= nu_energy_max_gev, "
                f"got {self.nu_energy_min_gev!r}, {self.nu_energy_peak_gev!r} and {self.nu_energy_max_gev!r}"
            )
        if self.nu_energy_min_gev == self.nu_energy_max_gev:
            raise ValueError(f"nu_energy_min_gev and nu_energy_max_gev are equal ({self.nu_energy_min_gev!r})")
        if not self.cosmic_energy_min_gev < self.cosmic_energy_max_gev:
            raise ValueError(
                "cosmic_energy_min_gev must be below cosmic_energy_max_gev, "
                f"got {self.cosmic_energy_min_gev!r} and {self.cosmic_energy_max_gev!r}"
            )
        if self.cosmic_spectral_index == 1.0:
            raise ValueError("cosmic_spectral_index must differ from 1, the sampler has no E^-1 case")
        if self.adc_max <= self.threshold_adc:
            raise ValueError(f"adc_max ({self.adc_max!r}) must exceed threshold_adc ({self.threshold_adc!r})")

        if 2 * self.fiducial_side_margin_cm >= self.width_cm:
            raise ValueError(
                f"fiducial_side_margin_cm={self.fiducial_side_margin_cm!r} leaves no fiducial volume "
                f"in a plane {self.width_cm:g} cm wide"
            )
        if self.fiducial_front_margin_cm + self.fiducial_back_margin_cm >= self.length_cm:
            raise ValueError(
                f"fiducial_front_margin_cm + fiducial_back_margin_cm "
                f"({self.fiducial_front_margin_cm + self.fiducial_back_margin_cm:g} cm) leaves no fiducial volume "
                f"in a detector {self.length_cm:g} cm long. Lower the margins or raise n_planes"
            )

    @property
    def width_cm(self) -> float:
        """Width and height of a plane, cm (the planes are square)."""
        return self.n_cells * self.cell_width_cm

    @property
    def length_cm(self) -> float:
        """Length of the detector along the beam, cm."""
        return self.n_planes * self.plane_depth_cm

    @property
    def moliere_radius_cm(self) -> float:
        """Moliere radius, 21.2 MeV * X0 / Ec, cm."""
        return 21.2 * self.radiation_length_cm / self.critical_energy_mev

    @property
    def fiducial_bounds_cm(self) -> tuple[tuple[float, float], tuple[float, float], tuple[float, float]]:
        """(low, high) edges of the fiducial volume in x, y and z, cm."""
        half = self.width_cm / 2 - self.fiducial_side_margin_cm
        z_range = (self.fiducial_front_margin_cm, self.length_cm - self.fiducial_back_margin_cm)
        return (-half, half), (-half, half), z_range


def config_fields() -> list[tuple[str, type, object, str]]:
    """Return (name, type, default, help text) for every `DetectorConfig` field, in order."""
    defaults = DetectorConfig()
    rows = []
    for spec in dataclasses.fields(DetectorConfig):
        value_type = int if spec.name in _INTEGER_FIELDS else float
        rows.append((spec.name, value_type, getattr(defaults, spec.name), spec.metadata["help"]))
    return rows
