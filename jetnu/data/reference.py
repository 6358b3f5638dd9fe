"""Read the public top-tagging reference dataset (the "landscape" dataset) with h5py alone.

Its files are pandas HDFStore files written in "fixed" format under the key ``table``.
The group ``/table`` contains ``axis0`` (all column names), ``axis1`` (the row index) and,
for each dtype block k, ``block{k}_items`` (the block's column names) and
``block{k}_values`` (shape (rows, len(items))). Every column is located by name through
the ``block{k}_items`` datasets, never by its position in ``axis0``, so neither the row
index nor a name array can enter the data.

Columns read: ``E_i, PX_i, PY_i, PZ_i`` for the constituent slots i = 0, 1, ... (200 in
the published files; GeV, zero-padded at the end) and ``is_signal_new`` (1 top, 0 QCD).
``truthE``, ``truthPX``, ``truthPY``, ``truthPZ`` and ``ttv`` are not read.

Jets come out in the in-memory form of `jetnu.data.reader.iterate_jets`: the fields of
`JET_SCHEMA` with the dtypes of `JET_WRITE_DTYPES`. Slots with E == 0 are padding and
are removed. Constituents are sorted by decreasing pT. ``jet_pt``, ``jet_eta``,
``jet_phi`` and ``jet_mass`` come from the four-vector sum of the constituents.

NOTE: the tests use files written with h5py in pandas' fixed layout, not the published files.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import awkward as ak
import h5py
import numpy as np

from jetnu.data.errors import (
    BadValueError,
    BranchTypeError,
    EmptyTreeError,
    InputFileError,
    MissingBranchError,
    MissingTreeError,
)
from jetnu.data.reader import DEFAULT_STEP_SIZE, check_entry_number, check_step_size, join_chunks
from jetnu.data.schema import JET_PARTICLE_BRANCHES, JET_SCALAR_BRANCHES, JET_TREE
from jetnu.sim.jet_batch import JetBatch

logger = logging.getLogger(__name__)

REFERENCE_KEY = "table"
LABEL_COLUMN = "is_signal_new"
MOMENTUM_COMPONENTS = ("E", "PX", "PY", "PZ")  # column prefixes of the constituent four-vectors
HDF5_SUFFIXES = (".h5", ".hdf5")

_SLOT_COLUMN = re.compile(r"E_(\d+)")
_MAX_LISTED_COLUMNS = 5
_MAX_LISTED_KEYS = 20
_INT32_MAX = np.iinfo(np.int32).max

# h5py 3.16 raises OSError for a file that is not HDF5 or is truncated. Damaged objects
# inside a file can also raise KeyError, ValueError or RuntimeError from the HDF5 library.
_H5PY_ERRORS = (OSError, KeyError, ValueError, RuntimeError)


def is_hdf5_file(path: str | Path) -> bool:
    """Return True when ``path`` ends in .h5 or .hdf5, or is an existing file with the HDF5 signature."""
    path = Path(path).expanduser()
    if path.suffix.lower() in HDF5_SUFFIXES:
        return True
    return path.is_file() and h5py.is_hdf5(path)


def reference_key(tree: str | None) -> str:
    """Map a reader's tree name to an HDFStore key: the jet tree name means the key ``table``."""
    return REFERENCE_KEY if tree in (None, JET_TREE) else tree


@dataclass(frozen=True)
class _Columns:
    """Locations of the needed columns as (block number, position in the block) pairs."""

    num_rows: int
    num_slots: int
    blocks: dict[str, tuple[np.ndarray, np.ndarray]]  # "E", "PX", "PY", "PZ" -> (blocks, positions), each (slots,)
    label: tuple[int, int]  # (block number, position) of is_signal_new


def validate_reference_file(path: str | Path, *, key: str = REFERENCE_KEY) -> int:
    """Check a reference-dataset HDF5 file from its metadata and return its number of jets.

    Raises FileNotFoundError, InputFileError (not HDF5, a pandas "table"-format store, or
    not a pandas DataFrame), MissingTreeError (no such key), MissingBranchError (missing
    columns), BranchTypeError (non-numeric columns) or EmptyTreeError.
    """
    path = _check_path(path)
    with _open_hdf5(path) as file:
        return _locate_columns(file, path, key.strip("/")).num_rows


def iterate_reference_batches(
    path: str | Path,
    *,
    key: str = REFERENCE_KEY,
    step_size: int = DEFAULT_STEP_SIZE,
    entry_start: int | None = None,
    entry_stop: int | None = None,
) -> Iterator[tuple[int, JetBatch]]:
    """Yield ``(first_entry, batch)`` chunks as `JetBatch` objects (see `iterate_reference_jets`)."""
    path = _check_path(path)
    step_size = check_step_size(step_size)
    num_rows = validate_reference_file(path, key=key)
    entry_start, entry_stop = _resolve_row_range(path, key, num_rows, entry_start, entry_stop)

    # A plain function returning the generator, so the checks above run at call time.
    return _iterate_checked(path, key, step_size, entry_start, entry_stop)


def iterate_reference_jets(
    path: str | Path,
    *,
    key: str = REFERENCE_KEY,
    step_size: int = DEFAULT_STEP_SIZE,
    entry_start: int | None = None,
    entry_stop: int | None = None,
) -> Iterator[tuple[int, ak.Array]]:
    """Yield ``(first_entry, jets)`` chunks of at most ``step_size`` rows of a reference file.

    ``jets`` has the fields and dtypes that `jetnu.data.reader.iterate_jets` gives for a
    ROOT jet tree. ``first_entry`` is the row number of the chunk's first jet. Only the
    rows of one chunk are read at a time. The file and the range ``entry_start..entry_stop``
    (stop excluded, default all rows) are checked when this function is called.
    """
    batches = iterate_reference_batches(
        path, key=key, step_size=step_size, entry_start=entry_start, entry_stop=entry_stop
    )
    return ((first_entry, batch_to_jets(batch)) for first_entry, batch in batches)


def read_reference_jets(
    path: str | Path,
    *,
    key: str = REFERENCE_KEY,
    step_size: int = DEFAULT_STEP_SIZE,
    entry_start: int | None = None,
    entry_stop: int | None = None,
) -> ak.Array:
    """Read the rows ``entry_start..entry_stop`` into one awkward array (see `iterate_reference_jets`)."""
    return join_chunks(
        iterate_reference_jets(path, key=key, step_size=step_size, entry_start=entry_start, entry_stop=entry_stop)
    )


def batch_to_jets(batch: JetBatch) -> ak.Array:
    """Return a `JetBatch` as the awkward record array of `jetnu.data.reader.iterate_jets`."""
    fields: dict[str, object] = {name: batch.scalars[name] for name in JET_SCALAR_BRANCHES}
    for name in JET_PARTICLE_BRANCHES:
        fields[name] = ak.unflatten(batch.particles[name], batch.counts.astype(np.int64))
    return ak.Array(fields)


def jets_from_four_vectors(
    energy: np.ndarray, px: np.ndarray, py: np.ndarray, pz: np.ndarray, labels: np.ndarray
) -> JetBatch:
    """Build jets from zero-padded constituent four-vectors of shape (jets, slots), in GeV.

    Slots with ``energy == 0`` are padding and are dropped. The remaining constituents
    are sorted by decreasing pT. The jet four-vector is their sum, and a jet without
    constituents gets pT, eta, phi and mass 0. A negative squared mass from rounding is
    clipped to 0.
    """
    energy, px, py, pz = (np.asarray(array, dtype=np.float64) for array in (energy, px, py, pz))
    keep = energy != 0
    pt = np.hypot(px, py)

    # Padding sorts last: its key is -inf, and the sort is stable, so ties keep slot order.
    order = np.argsort(-np.where(keep, pt, -np.inf), axis=1, kind="stable")
    keep = np.take_along_axis(keep, order, axis=1)
    pt, energy, px, py, pz = (np.take_along_axis(array, order, axis=1) for array in (pt, energy, px, py, pz))
    counts = keep.sum(axis=1)

    with np.errstate(divide="ignore", invalid="ignore"):
        part_eta = np.arcsinh(pz[keep] / pt[keep])
    part_phi = np.arctan2(py[keep], px[keep])

    jet_e, jet_px, jet_py, jet_pz = (np.where(keep, array, 0.0).sum(axis=1) for array in (energy, px, py, pz))
    jet_pt = np.hypot(jet_px, jet_py)
    has_pt = jet_pt > 0
    jet_eta = np.zeros_like(jet_pt)
    jet_eta[has_pt] = np.arcsinh(jet_pz[has_pt] / jet_pt[has_pt])
    jet_phi = np.where(has_pt, np.arctan2(jet_py, jet_px), 0.0)
    jet_mass = np.sqrt(np.maximum(jet_e**2 - jet_px**2 - jet_py**2 - jet_pz**2, 0.0))

    return JetBatch.from_columns(
        jet_pt=jet_pt,
        jet_eta=jet_eta,
        jet_phi=jet_phi,
        jet_mass=jet_mass,
        label=labels,
        counts=counts,
        part_pt=pt[keep],
        part_eta=part_eta,
        part_phi=part_phi,
        part_e=energy[keep],
    )


def _check_path(path: str | Path) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"input file not found: {str(path)!r}")
    if not path.is_file():
        raise InputFileError(f"input path {str(path)!r} is not a file", path=path)
    return path


def _open_hdf5(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except _H5PY_ERRORS as error:
        raise InputFileError(
            f"cannot read {str(path)!r} as an HDF5 file: {error}. Reference-dataset files are pandas "
            f"HDFStores (.h5 or .hdf5), and jet trees are ROOT files (.root)",
            path=path,
        ) from error


def _pandas_keys(file: h5py.File) -> list[str]:
    """List the pandas keys of a store: groups with a ``pandas_type`` attribute."""
    keys = []

    def visit(name, item):
        if isinstance(item, h5py.Group) and "pandas_type" in item.attrs:
            keys.append(name)

    file.visititems(visit)
    return sorted(keys)


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _column_names(dataset: h5py.Dataset) -> list[str]:
    return [_text(name) for name in dataset[...].ravel().tolist()]


def _frame_group(file: h5py.File, path: Path, key: str) -> h5py.Group:
    """Return the group of a fixed-format DataFrame, or raise naming what the key contains instead."""
    where = f"{str(path)!r}"
    group = file.get(key)
    if not isinstance(group, h5py.Group):
        keys = _pandas_keys(file)
        kind = "pandas keys"
        if not keys:
            keys = sorted(file.keys())
            kind = "objects (none is a pandas key)"
        closest = difflib.get_close_matches(key, keys, n=1)
        hint = f"; did you mean {closest[0]!r}?" if closest else ""
        listed = keys[:_MAX_LISTED_KEYS]
        if len(keys) > _MAX_LISTED_KEYS:
            listed.append(f"... {len(keys) - _MAX_LISTED_KEYS} more")
        raise MissingTreeError(f"no key {key!r} in {where}; {kind} in the file: {listed}{hint}", path=path, tree=key)

    pandas_type = _text(group.attrs.get("pandas_type", ""))
    if pandas_type == "frame_table" or isinstance(group.get("table"), h5py.Dataset):
        raise InputFileError(
            f"key {key!r} in {where} is a pandas store in 'table' format (PyTables dataset "
            f"'/{key}/table'), which jetnu does not read; re-save it in fixed format with pandas: "
            f"pandas.read_hdf(IN, {key!r}).to_hdf(OUT, key={key!r}, format='fixed')",
            path=path,
            tree=key,
        )
    if "block0_items" not in group or "block0_values" not in group:
        found = f"pandas_type {pandas_type!r}" if pandas_type else "no pandas_type attribute"
        raise InputFileError(
            f"key {key!r} in {where} is not a pandas DataFrame in fixed format: dataset "
            f"'/{key}/block0_items' or '/{key}/block0_values' is missing ({found}; members: {sorted(group.keys())})",
            path=path,
            tree=key,
        )
    return group


def _locate_columns(file: h5py.File, path: Path, key: str) -> _Columns:
    where = f"{str(path)!r}"
    group = _frame_group(file, path, key)
    columns, duplicates, num_rows, dtypes = _read_blocks(group, path, key)
    num_slots = _count_slots(columns)
    required = [f"{component}_{slot}" for slot in range(num_slots) for component in MOMENTUM_COMPONENTS]
    required.append(LABEL_COLUMN)
    _check_required_present(required, columns, path, key, num_slots)

    # pandas allows repeated column names, but then a name no longer identifies one column.
    repeated = [name for name in required if name in duplicates]
    if repeated:
        raise InputFileError(
            f"key {key!r} in {where} has repeated column names {repeated[:_MAX_LISTED_COLUMNS]}, so jetnu "
            f"cannot tell which column to read",
            path=path,
            tree=key,
            branch=repeated[0],
        )

    for name in required:
        block = columns[name][0]
        if dtypes[block].kind not in "fiub":
            raise BranchTypeError(
                f"column {name!r} of key {key!r} in {where} has dtype {dtypes[block]}, expected a number "
                f"(dataset '/{key}/block{block}_values')",
                path=path,
                tree=key,
                branch=name,
            )

    if num_rows == 0:
        raise EmptyTreeError(f"key {key!r} in {where} has no rows", path=path, tree=key)

    blocks = {}
    for component in MOMENTUM_COMPONENTS:
        sources = [columns[f"{component}_{slot}"] for slot in range(num_slots)]
        blocks[component] = (
            np.array([block for block, _ in sources], dtype=np.int64),
            np.array([position for _, position in sources], dtype=np.int64),
        )
    return _Columns(num_rows, num_slots, blocks, columns[LABEL_COLUMN])


def _read_blocks(
    group: h5py.Group, path: Path, key: str
) -> tuple[dict[str, tuple[int, int]], set[str], int, list[np.dtype]]:
    """Map each column name to (block, position) and check the block shapes against each other.

    Also returns the names that occur more than once and the number of rows.
    """
    where = f"{str(path)!r}"
    columns: dict[str, tuple[int, int]] = {}
    duplicates: set[str] = set()
    dtypes = []
    num_rows = None

    block = 0
    while f"block{block}_items" in group:
        items_name, values_name = f"block{block}_items", f"block{block}_values"
        if values_name not in group:
            raise InputFileError(f"key {key!r} in {where} has {items_name!r} but no {values_name!r}", path=path, tree=key)
        names = _column_names(group[items_name])
        values = group[values_name]
        # pandas stores each block transposed, one row per DataFrame row.
        if values.ndim != 2 or values.shape[1] != len(names):
            raise InputFileError(
                f"dataset '/{key}/{values_name}' in {where} has shape {values.shape}, expected "
                f"(rows, {len(names)}) for the {len(names)} columns of '/{key}/{items_name}'",
                path=path,
                tree=key,
            )
        if num_rows is not None and values.shape[0] != num_rows:
            raise InputFileError(
                f"dataset '/{key}/{values_name}' in {where} has {values.shape[0]} rows, but "
                f"'/{key}/block0_values' has {num_rows}",
                path=path,
                tree=key,
            )
        num_rows = values.shape[0]
        dtypes.append(values.dtype)

        for position, name in enumerate(names):
            if name in columns:
                duplicates.add(name)
            columns[name] = (block, position)
        block += 1

    if "axis1" in group and group["axis1"].shape[0] != num_rows:
        raise InputFileError(
            f"key {key!r} in {where} has {group['axis1'].shape[0]} index entries in '/{key}/axis1' "
            f"but {num_rows} rows in '/{key}/block0_values'",
            path=path,
            tree=key,
        )

    return columns, duplicates, int(num_rows), dtypes


def _count_slots(columns: dict[str, tuple[int, int]]) -> int:
    """Return the number of constituent slots: one more than the highest i of an ``E_i`` column."""
    slots = [int(match.group(1)) for name in columns if (match := _SLOT_COLUMN.fullmatch(name))]
    return max(slots) + 1 if slots else 1


def _check_required_present(required: list[str], columns: dict, path: Path, key: str, num_slots: int) -> None:
    missing = [name for name in required if name not in columns]
    if not missing:
        return

    listed = ", ".join(repr(name) for name in missing[:_MAX_LISTED_COLUMNS])
    more = f" and {len(missing) - _MAX_LISTED_COLUMNS} more" if len(missing) > _MAX_LISTED_COLUMNS else ""
    closest = difflib.get_close_matches(missing[0], list(columns), n=1)
    hint = f" (closest existing column to {missing[0]!r}: {closest[0]!r})" if closest else ""
    raise MissingBranchError(
        f"key {key!r} in {str(path)!r} is missing columns {listed}{more}{hint}; the reference dataset "
        f"needs E_i, PX_i, PY_i, PZ_i for constituent slots i = 0..{num_slots - 1} and {LABEL_COLUMN!r}",
        path=path,
        tree=key,
        branch=missing[0],
    )


def _resolve_row_range(
    path: Path, key: str, num_rows: int, entry_start: int | None, entry_stop: int | None
) -> tuple[int, int]:
    start = 0 if entry_start is None else check_entry_number("entry_start", entry_start)
    stop = num_rows if entry_stop is None else check_entry_number("entry_stop", entry_stop)

    where = f"key {key!r} in {str(path)!r} has {num_rows} rows"
    if stop > num_rows:
        raise ValueError(f"entry_stop={stop} is past the end: {where}; pass entry_stop <= {num_rows} or None")
    if start >= stop:
        raise ValueError(
            f"empty entry range entry_start={start}, entry_stop={stop}: {where}; entry_start must be below entry_stop"
        )
    return start, stop


def _iterate_checked(
    path: Path, key: str, step_size: int, entry_start: int, entry_stop: int
) -> Iterator[tuple[int, JetBatch]]:
    key = key.strip("/")
    with _open_hdf5(path) as file:
        columns = _locate_columns(file, path, key)
        group = file[key]
        needed_blocks = {columns.label[0]}
        for blocks, _ in columns.blocks.values():
            needed_blocks.update(blocks.tolist())

        for start in range(entry_start, entry_stop, step_size):
            stop = min(start + step_size, entry_stop)
            try:
                rows = {block: group[f"block{block}_values"][start:stop] for block in needed_blocks}
            except _H5PY_ERRORS as error:
                raise InputFileError(
                    f"failed to read rows {start}..{stop} of key {key!r} in {str(path)!r}: {error}",
                    path=path,
                    tree=key,
                ) from error

            four_vectors = {component: _gather(rows, *columns.blocks[component]) for component in MOMENTUM_COMPONENTS}
            label_block, label_position = columns.label
            labels = _labels(rows[label_block][:, label_position], path, key, start)
            batch = jets_from_four_vectors(
                four_vectors["E"], four_vectors["PX"], four_vectors["PY"], four_vectors["PZ"], labels
            )
            logger.debug("read rows %d..%d of %s:%s", start, stop, path, key)
            yield start, batch


def _gather(rows: dict[int, np.ndarray], blocks: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Collect one column per slot from the blocks' row slices into a (rows, slots) float64 array."""
    num_rows = len(next(iter(rows.values())))
    out = np.empty((num_rows, len(positions)), dtype=np.float64)
    for block in np.unique(blocks):
        in_block = blocks == block
        out[:, in_block] = rows[int(block)][:, positions[in_block]]
    return out


def _labels(values: np.ndarray, path: Path, key: str, first_entry: int) -> np.ndarray:
    """Return ``is_signal_new`` as int32 after checking that every value is a whole number."""
    if values.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)) | (np.abs(values) > _INT32_MAX))
    else:
        bad = np.flatnonzero(np.abs(values.astype(np.int64)) > _INT32_MAX)
    if bad.size:
        entry = first_entry + int(bad[0])
        raise BadValueError(
            f"row {entry} of key {key!r} in {str(path)!r}: {LABEL_COLUMN} is {values[bad[0]]!r}, expected "
            f"a whole number (1 top, 0 QCD)",
            entry=entry,
            path=path,
            tree=key,
            branch=LABEL_COLUMN,
        )
    return values.astype(np.int32)
