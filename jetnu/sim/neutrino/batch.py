"""Simulated events in the branch layout of the `events` tree, and writing them to a ROOT file."""

from __future__ import annotations

import os
from dataclasses import dataclass

import awkward as ak
import numpy as np
import uproot

from jetnu.data.schema import EVENT_TREE

# Hits go out as one record field, so uproot names their branches "hit_<field>" and their
# counter "nhit", as the schema expects.
HIT_FIELD = "hit"
COUNTER_BRANCH = "nhit"

# Per-event branches: the schema's label and nu_energy, then truth extras.
SCALAR_DTYPES: dict[str, type] = {
    "label": np.int32,  # index into NEUTRINO_CLASS_NAMES
    "nu_energy": np.float32,  # true neutrino energy, GeV, 0 for cosmic muons
    "lepton_energy": np.float32,  # outgoing lepton energy (neutrino for NC, muon for cosmics), GeV
    "y_inelasticity": np.float32,  # hadronic energy over neutrino energy, 0 for cosmic muons
    "vertex_x": np.float32,  # interaction vertex (cosmic muons: entry point), cm
    "vertex_y": np.float32,
    "vertex_z": np.float32,
}

# Per-hit fields, written as branches hit_<name>.
HIT_DTYPES: dict[str, type] = {
    "view": np.int32,  # 0 = XZ, 1 = YZ
    "plane": np.int32,
    "cell": np.int32,
    "adc": np.float32,  # ADC counts
    "energy": np.float32,  # deposited energy, GeV
}


@dataclass(frozen=True)
class EventBatch:
    """Events as flat arrays: one value per event in `scalars`, the hits of all events in `hits`.

    The `counts[i]` hits of event i follow those of event i - 1 in every `hits` array.
    """

    scalars: dict[str, np.ndarray]  # SCALAR_DTYPES name -> (n_events,)
    counts: np.ndarray  # (n_events,) int32, written as the `nhit` counter
    hits: dict[str, np.ndarray]  # HIT_DTYPES name -> (sum of counts,)

    @classmethod
    def from_columns(cls, scalars: dict, counts, hits: dict) -> EventBatch:
        """Build a batch from one array per branch, cast to the branch dtypes and checked for shape."""
        if set(scalars) != set(SCALAR_DTYPES) or set(hits) != set(HIT_DTYPES):
            raise ValueError(
                f"expected scalars {sorted(SCALAR_DTYPES)} and hits {sorted(HIT_DTYPES)}, "
                f"got {sorted(scalars)} and {sorted(hits)}"
            )
        counts = np.asarray(counts, dtype=np.int64)
        if counts.ndim != 1 or (counts.size and counts.min() < 0):
            raise ValueError(f"counts must be a 1-d array of non-negative integers, got shape {counts.shape}")

        scalars = {name: np.asarray(scalars[name]).astype(dtype) for name, dtype in SCALAR_DTYPES.items()}
        hits = {name: np.asarray(hits[name]).astype(dtype) for name, dtype in HIT_DTYPES.items()}
        for name, array in scalars.items():
            if array.shape != counts.shape:
                raise ValueError(f"branch {name!r} has shape {array.shape}, expected {counts.shape}")
        for name, array in hits.items():
            if array.shape != (int(counts.sum()),):
                raise ValueError(f"branch hit_{name} has shape {array.shape}, expected ({int(counts.sum())},)")
        return cls(scalars, counts.astype(np.int32), hits)

    @classmethod
    def concatenate(cls, batches: list[EventBatch]) -> EventBatch:
        """Join batches in the given order."""
        if not batches:
            raise ValueError("no batches to concatenate")
        return cls(
            {name: np.concatenate([b.scalars[name] for b in batches]) for name in SCALAR_DTYPES},
            np.concatenate([b.counts for b in batches]),
            {name: np.concatenate([b.hits[name] for b in batches]) for name in HIT_DTYPES},
        )

    def __len__(self) -> int:
        return len(self.counts)

    def entry_range(self, start: int, stop: int) -> EventBatch:
        """Return events start..stop-1 as a new batch."""
        offsets = np.concatenate(([0], np.cumsum(self.counts, dtype=np.int64)))
        first, last = offsets[start], offsets[stop]
        return EventBatch(
            {name: array[start:stop] for name, array in self.scalars.items()},
            self.counts[start:stop],
            {name: array[first:last] for name, array in self.hits.items()},
        )

    def to_branch_data(self) -> dict[str, object]:
        """Return the mapping that uproot's TTree `extend` takes: scalars plus one `hit` record."""
        fields = {name: ak.unflatten(array, self.counts) for name, array in self.hits.items()}
        return {**self.scalars, HIT_FIELD: ak.zip(fields)}


def write_event_tree(
    path: str | os.PathLike,
    batch: EventBatch,
    *,
    compression_level: int = 5,
    entries_per_basket: int = 10_000,
) -> None:
    """Write `batch` as the TTree `events` to `path` (ZSTD), replacing any file there.

    Entries go out in baskets of `entries_per_basket` events, so readers can load ranges.
    """
    if len(batch) == 0:
        raise ValueError(f"cannot write {path}: the event batch is empty")

    with uproot.recreate(path, compression=uproot.ZSTD(compression_level)) as file:
        first = batch.entry_range(0, min(entries_per_basket, len(batch))).to_branch_data()
        branch_types = {
            name: (value.type.content if isinstance(value, ak.Array) else value.dtype) for name, value in first.items()
        }
        tree = file.mktree(EVENT_TREE, branch_types)
        tree.extend(first)

        for start in range(entries_per_basket, len(batch), entries_per_basket):
            stop = min(start + entries_per_basket, len(batch))
            tree.extend(batch.entry_range(start, stop).to_branch_data())
