"""Jets in the branch layout of the `jets` tree, and writing them to a ROOT file."""

from __future__ import annotations

import os
from dataclasses import dataclass

import awkward as ak
import numpy as np
import uproot

from jetnu.data.schema import JET_PARTICLE_BRANCHES, JET_SCALAR_BRANCHES, JET_TREE, JET_WRITE_DTYPES

# Constituents go out as one record field, so uproot names their branches "part_<field>"
# and their counter "npart", as the schema expects.
PARTICLE_FIELD = "part"
COUNTER_BRANCH = "npart"

# float32(pi) is 3.1415927, above pi, so a cast alone could put an angle just below pi
# outside [-pi, pi]. Angles are clipped to the largest float32 not above pi instead.
_PHI_LIMIT_F32 = np.nextafter(np.float32(np.pi), np.float32(0))
_PHI_BRANCHES = ("jet_phi", "part_phi")


def _to_write_dtype(name: str, values) -> np.ndarray:
    array = np.asarray(values).astype(JET_WRITE_DTYPES[name], copy=False)
    if name in _PHI_BRANCHES:
        array = np.clip(array, -_PHI_LIMIT_F32, _PHI_LIMIT_F32)
    return array


@dataclass(frozen=True)
class JetBatch:
    """Jets as flat arrays: one value per jet in `scalars`, constituents of all jets in `particles`.

    `counts[i]` constituents of jet i follow those of jet i - 1 in every `particles` array.
    Arrays carry the dtypes of `JET_WRITE_DTYPES`, `counts` is int32.
    """

    scalars: dict[str, np.ndarray]  # JET_SCALAR_BRANCHES name -> (n_jets,)
    counts: np.ndarray  # (n_jets,) int32, written as the `npart` counter
    particles: dict[str, np.ndarray]  # JET_PARTICLE_BRANCHES name -> (sum of counts,)

    @classmethod
    def from_columns(cls, *, counts, **columns) -> JetBatch:
        """Build a batch from one array per schema branch, cast to the schema dtypes."""
        expected = {*JET_SCALAR_BRANCHES, *JET_PARTICLE_BRANCHES}
        if set(columns) != expected:
            raise ValueError(f"expected columns {sorted(expected)}, got {sorted(columns)}")

        counts = np.asarray(counts)
        if counts.ndim != 1 or (counts.size and counts.min() < 0):
            raise ValueError(f"counts must be a 1-d array of non-negative integers, got shape {counts.shape}")
        scalars = {name: _to_write_dtype(name, columns[name]) for name in JET_SCALAR_BRANCHES}
        particles = {name: _to_write_dtype(name, columns[name]) for name in JET_PARTICLE_BRANCHES}

        for name, array in scalars.items():
            if array.shape != counts.shape:
                raise ValueError(f"branch {name!r} has shape {array.shape}, expected {counts.shape}")
        n_particles = int(counts.sum())
        for name, array in particles.items():
            if array.shape != (n_particles,):
                raise ValueError(f"branch {name!r} has shape {array.shape}, expected ({n_particles},)")
        return cls(scalars, counts.astype(np.int32), particles)

    def __len__(self) -> int:
        return len(self.counts)

    @classmethod
    def concatenate(cls, batches: list[JetBatch]) -> JetBatch:
        """Join batches in the given order."""
        if not batches:
            raise ValueError("no batches to concatenate")
        return cls(
            {name: np.concatenate([b.scalars[name] for b in batches]) for name in JET_SCALAR_BRANCHES},
            np.concatenate([b.counts for b in batches]),
            {name: np.concatenate([b.particles[name] for b in batches]) for name in JET_PARTICLE_BRANCHES},
        )

    def take(self, indices) -> JetBatch:
        """Return the jets at `indices`, in that order."""
        indices = np.asarray(indices, dtype=np.int64)
        offsets = np.zeros(len(self.counts) + 1, dtype=np.int64)
        np.cumsum(self.counts, out=offsets[1:])

        new_counts = self.counts[indices].astype(np.int64)
        new_offsets = np.zeros(len(indices) + 1, dtype=np.int64)
        np.cumsum(new_counts, out=new_offsets[1:])
        # Position k of the new flat arrays reads old position start[jet of k] + (k - new start).
        shift = np.repeat(offsets[indices] - new_offsets[:-1], new_counts)
        particle_index = shift + np.arange(new_offsets[-1])

        return JetBatch(
            {name: array[indices] for name, array in self.scalars.items()},
            self.counts[indices],
            {name: array[particle_index] for name, array in self.particles.items()},
        )

    def to_branch_data(self) -> dict[str, object]:
        """Return the mapping that `uproot` TTree `extend` takes: scalars plus one `part` record."""
        fields = {
            name.removeprefix(f"{PARTICLE_FIELD}_"): ak.unflatten(array, self.counts)
            for name, array in self.particles.items()
        }
        return {**self.scalars, PARTICLE_FIELD: ak.zip(fields)}


class JetTreeWriter:
    """Write `JetBatch` chunks one after another as the TTree `jets` of a new ROOT file.

    Use it as a context manager. The tree is created from the first non-empty batch, and
    each batch is split into baskets of at most `entries_per_basket` jets, so readers can
    load ranges. A file closed before any jet was written contains no tree.
    """

    def __init__(self, path: str | os.PathLike, *, compression_level: int = 5, entries_per_basket: int = 10_000):
        if entries_per_basket < 1:
            raise ValueError(f"entries_per_basket must be positive, got {entries_per_basket!r}")
        self.path = path
        self.entries_per_basket = entries_per_basket
        self.num_entries = 0
        self._file = uproot.recreate(path, compression=uproot.ZSTD(compression_level))
        self._tree = None

    def __enter__(self) -> JetTreeWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def write(self, batch: JetBatch) -> None:
        """Append the jets of `batch` to the tree."""
        for start in range(0, len(batch), self.entries_per_basket):
            stop = min(start + self.entries_per_basket, len(batch))
            data = batch.take(np.arange(start, stop)).to_branch_data()
            if self._tree is None:
                branch_types = {
                    name: (value.type.content if isinstance(value, ak.Array) else value.dtype)
                    for name, value in data.items()
                }
                self._tree = self._file.mktree(JET_TREE, branch_types)
            self._tree.extend(data)
            self.num_entries += stop - start


def write_jet_tree(
    path: str | os.PathLike,
    batch: JetBatch,
    *,
    compression_level: int = 5,
    entries_per_basket: int = 10_000,
) -> None:
    """Write `batch` as the TTree `jets` to `path`, replacing any file there.

    Entries go out in baskets of `entries_per_basket` jets, so readers can load ranges.
    """
    if len(batch) == 0:
        raise ValueError(f"cannot write {path}: the jet batch is empty")

    with JetTreeWriter(path, compression_level=compression_level, entries_per_basket=entries_per_basket) as writer:
        writer.write(batch)
