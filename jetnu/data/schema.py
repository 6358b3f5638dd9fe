"""Branch layout of the ROOT trees that jetnu reads and writes.

Every reader validates a file against one of these schemas before any work starts, so a
wrong file fails at once with the file, tree and branch in the message.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

JET_TREE = "jets"

# Per-jet branches: name -> numpy kind ("f" float, "i" signed integer).
JET_SCALAR_BRANCHES: dict[str, str] = {
    "jet_pt": "f",  # GeV
    "jet_eta": "f",
    "jet_phi": "f",  # rad, in [-pi, pi]
    "jet_mass": "f",  # GeV
    "label": "i",  # 0 QCD, 1 top
}

# Jagged per-constituent branches, sorted by decreasing pT, counted by `npart`.
JET_PARTICLE_BRANCHES: dict[str, str] = {
    "part_pt": "f",  # GeV
    "part_eta": "f",
    "part_phi": "f",  # rad
    "part_e": "f",  # GeV
}

JET_CLASS_NAMES: tuple[str, ...] = ("qcd", "top")


@dataclass(frozen=True)
class TreeSchema:
    """Expected branches of one tree: scalar and jagged, with their numpy kinds."""

    tree: str
    scalars: dict[str, str]
    jagged: dict[str, str]

    @property
    def branches(self) -> list[str]:
        return [*self.scalars, *self.jagged]

    def kind_of(self, branch: str) -> str:
        return {**self.scalars, **self.jagged}[branch]


JET_SCHEMA = TreeSchema(JET_TREE, JET_SCALAR_BRANCHES, JET_PARTICLE_BRANCHES)

# dtypes used when writing the jets tree
JET_WRITE_DTYPES: dict[str, type] = {
    **{name: np.float32 for name in JET_PARTICLE_BRANCHES},
    **{name: (np.int32 if kind == "i" else np.float32) for name, kind in JET_SCALAR_BRANCHES.items()},
}


EVENT_TREE = "events"

# Per-event branches of the neutrino detector tree.
EVENT_SCALAR_BRANCHES: dict[str, str] = {
    "label": "i",  # index into NEUTRINO_CLASS_NAMES
    "nu_energy": "f",  # true neutrino energy, GeV (0 for cosmic muons)
}

# Jagged per-hit branches, counted by `nhit`: one entry per readout cell above threshold.
EVENT_HIT_BRANCHES: dict[str, str] = {
    "hit_view": "i",  # 0 = XZ view (vertical cells measure x), 1 = YZ view
    "hit_plane": "i",  # plane number along the beam (z), counting both views
    "hit_cell": "i",  # cell number across the plane
}

# Hit intensity branches: a file needs at least the one that the input spec's intensity names.
EVENT_INTENSITY_BRANCHES: dict[str, str] = {
    "adc": "hit_adc",  # digitised charge, ADC counts
    "energy": "hit_energy",  # deposited energy, GeV
}

NEUTRINO_CLASS_NAMES: tuple[str, ...] = ("numu_cc", "nue_cc", "nc", "cosmic")

EVENT_SCHEMA = TreeSchema(EVENT_TREE, EVENT_SCALAR_BRANCHES, EVENT_HIT_BRANCHES)
