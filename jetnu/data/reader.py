"""Read jet trees from ROOT files: validate first, then read in bounded entry ranges.

`validate_jet_file` checks the file, the tree and every branch's type from the file's
metadata alone, so a wrong file fails before any data is read. `iterate_jets` then reads
the schema's branches chunk by chunk with ``uproot``, and `read_jets` joins the chunks.
Errors from inside uproot are re-raised as the typed errors of `jetnu.data.errors`, which
carry the file, tree and branch.

HDF5 files (suffix .h5 or .hdf5, or the HDF5 signature) are read as the public
top-tagging reference dataset by `jetnu.data.reference`, into the same in-memory form.
There the tree name ``jets`` stands for the HDFStore key ``table``, and any other tree
name is used as the key.
"""

from __future__ import annotations

import difflib
import logging
import lzma
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import awkward as ak
import cramjam
import numpy as np
import uproot
import uproot.deserialization

from jetnu.data.errors import (
    BadValueError,
    BranchTypeError,
    EmptyTreeError,
    InputFileError,
    MissingBranchError,
    MissingTreeError,
)
from jetnu.data.schema import JET_SCHEMA, JET_TREE, TreeSchema

logger = logging.getLogger(__name__)

DEFAULT_STEP_SIZE = 10_000  # entries per chunk, about 11 MB for float32 jets with 70 constituents

# Exceptions that uproot 5.7 raises for unreadable or damaged files. A file without the ROOT
# magic bytes gives ValueError, a truncated file OSError and a damaged record
# DeserializationError. Damaged baskets raise the decompressor's own error (zlib, lzma, or
# cramjam for LZ4 and ZSTD).
_UPROOT_ERRORS = (
    OSError,
    ValueError,
    uproot.deserialization.DeserializationError,
    zlib.error,
    lzma.LZMAError,
    cramjam.DecompressionError,
)

_TREE_CLASSNAMES = ("TTree", "TNtuple", "TNtupleD")
_RNTUPLE_CLASSNAME = "ROOT::RNTuple"

_MAX_LISTED_BRANCHES = 40

_KIND_WORDS = {"f": "floating-point", "i": "signed integer"}


def validate_jet_file(path: str | Path, tree: str = JET_TREE) -> int:
    """Check a jet file against `JET_SCHEMA` from its metadata and return its number of entries.

    Raises FileNotFoundError, InputFileError (not a readable ROOT file), MissingTreeError,
    MissingBranchError, BranchTypeError or EmptyTreeError. Branches beyond the schema are
    allowed and ignored. An HDF5 file is checked as a reference-dataset store instead
    (see `jetnu.data.reference.validate_reference_file`).
    """
    if _is_reference_file(path):
        from jetnu.data import reference

        return reference.validate_reference_file(path, key=reference.reference_key(tree))
    return validate_tree(path, JET_SCHEMA, tree=tree)


def validate_tree(path: str | Path, schema: TreeSchema, *, tree: str | None = None) -> int:
    """Check that ``path`` contains a non-empty TTree with every branch of ``schema`` and return its entries."""
    path = _check_path(path)
    tree = schema.tree if tree is None else tree

    with _open_root(path) as file:
        ttree = _get_tree(file, path, tree)
        _check_branches(ttree, schema, path, tree)

        num_entries = int(ttree.num_entries)
        if num_entries == 0:
            raise EmptyTreeError(
                f"tree {tree!r} in {str(path)!r} has no entries", path=path, tree=tree
            )
    return num_entries


def iterate_jets(
    path: str | Path,
    *,
    tree: str = JET_TREE,
    step_size: int = DEFAULT_STEP_SIZE,
    entry_start: int | None = None,
    entry_stop: int | None = None,
) -> Iterator[tuple[int, ak.Array]]:
    """Yield ``(first_entry, jets)`` chunks of at most ``step_size`` entries.

    ``jets`` is an awkward record array whose fields are exactly the branches of
    `JET_SCHEMA` (scalars per jet, variable-length lists per constituent). ``first_entry``
    is the tree entry number of the chunk's first jet. The file is validated before the
    first chunk is read. The range ``entry_start..entry_stop`` (stop excluded) defaults to
    the whole tree and must be non-empty and inside it. The file and the range are checked
    when this function is called, before the first chunk is requested. An HDF5 file is
    read as the reference dataset (see `jetnu.data.reference.iterate_reference_jets`).
    """
    if _is_reference_file(path):
        from jetnu.data import reference

        return reference.iterate_reference_jets(
            path,
            key=reference.reference_key(tree),
            step_size=step_size,
            entry_start=entry_start,
            entry_stop=entry_stop,
        )

    path = _check_path(path)
    step_size = check_step_size(step_size)
    num_entries = validate_jet_file(path, tree)
    entry_start, entry_stop = resolve_entry_range(path, tree, num_entries, entry_start, entry_stop)

    # A plain function returning the generator, so the checks above run at call time.
    return _iterate_checked(path, JET_SCHEMA, tree, step_size, entry_start, entry_stop)


def read_jets(
    path: str | Path,
    *,
    tree: str = JET_TREE,
    step_size: int = DEFAULT_STEP_SIZE,
    entry_start: int | None = None,
    entry_stop: int | None = None,
) -> ak.Array:
    """Read the jet entries ``entry_start..entry_stop`` into one awkward array (see `iterate_jets`)."""
    return join_chunks(
        iterate_jets(path, tree=tree, step_size=step_size, entry_start=entry_start, entry_stop=entry_stop)
    )


def join_chunks(chunks: Iterable[tuple[int, ak.Array]]) -> ak.Array:
    """Concatenate the arrays of ``(first_entry, array)`` chunks, as the iterate functions yield them."""
    arrays = [array for _, array in chunks]
    if len(arrays) == 1:
        return arrays[0]
    return ak.concatenate(arrays)


def resolve_entry_range(
    path: str | Path, tree: str, num_entries: int, entry_start: int | None, entry_stop: int | None
) -> tuple[int, int]:
    """Turn an optional ``entry_start..entry_stop`` into a checked, non-empty range inside the tree."""
    start = 0 if entry_start is None else check_entry_number("entry_start", entry_start)
    stop = num_entries if entry_stop is None else check_entry_number("entry_stop", entry_stop)

    where = f"tree {tree!r} in {str(path)!r} has {num_entries} entries"
    if stop > num_entries:
        raise ValueError(f"entry_stop={stop} is past the end: {where}; pass entry_stop <= {num_entries} or None")
    if start >= stop:
        raise ValueError(
            f"empty entry range entry_start={start}, entry_stop={stop}: {where}; entry_start must be below entry_stop"
        )
    return start, stop


def check_entry_number(name: str, value: int) -> int:
    """Return ``value`` as an int after checking that it is a non-negative entry number."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer entry number or None, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0 (negative entry numbers are not supported), got {value}")
    return int(value)


def check_step_size(step_size: int) -> int:
    """Return ``step_size`` as an int after checking that it is a positive number of entries."""
    if isinstance(step_size, bool) or not isinstance(step_size, (int, np.integer)) or step_size < 1:
        raise ValueError(f"step_size must be a positive number of entries, got {step_size!r}")
    return int(step_size)


def jet_labels(
    jets: ak.Array, class_names: tuple[str, ...] | list[str], *, entry_offset: int = 0, source=None
) -> np.ndarray:
    """Return the ``label`` field as int64, checked to index into ``class_names`` (see `check_labels`)."""
    labels = ak.to_numpy(jets["label"]).astype(np.int64)
    return check_labels(labels, class_names, entry_offset=entry_offset, source=source)


def check_labels(
    labels: np.ndarray, class_names: tuple[str, ...] | list[str], *, entry_offset: int = 0, source=None
) -> np.ndarray:
    """Return ``labels`` after checking that each lies in ``range(len(class_names))``.

    Raises BadValueError naming the first entry (``entry_offset`` + position) whose label
    is outside that range.
    """
    bad = np.flatnonzero((labels < 0) | (labels >= len(class_names)))
    if bad.size:
        entry = entry_offset + int(bad[0])
        in_file = "" if source is None else f" of {str(source)!r}"
        raise BadValueError(
            f"entry {entry}{in_file}: label {int(labels[bad[0]])} is not a valid class index; "
            f"expected 0..{len(class_names) - 1} for classes {list(class_names)} "
            f"({bad.size} invalid labels in entries {entry_offset}..{entry_offset + len(labels) - 1})",
            entry=entry,
            path=source,
            branch="label",
        )
    return labels


def _is_reference_file(path: str | Path) -> bool:
    # jetnu.data.reference imports this module, so it is imported where it is used.
    from jetnu.data.reference import is_hdf5_file

    return is_hdf5_file(path)


def _check_path(path: str | Path) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"input file not found: {str(path)!r}")
    if not path.is_file():
        raise InputFileError(f"input path {str(path)!r} is not a file", path=path)
    return path


def _open_root(path: Path):
    # A Path (not a str) keeps uproot from reading "file.root:object" colon syntax into the name.
    try:
        return uproot.open(path)
    except _UPROOT_ERRORS as error:
        raise InputFileError(f"cannot read {str(path)!r} as a ROOT file: {error}", path=path) from error


def _get_tree(file, path: Path, tree: str):
    classnames = {key.rsplit(";", 1)[0]: name for key, name in file.classnames().items()}
    trees = sorted(name for name, classname in classnames.items() if classname in _TREE_CLASSNAMES)

    if tree not in classnames:
        closest = difflib.get_close_matches(tree, trees, n=1)
        hint = f"; did you mean {closest[0]!r}?" if closest else ""
        raise MissingTreeError(
            f"no tree {tree!r} in {str(path)!r}; trees in the file: {trees}{hint}", path=path, tree=tree
        )

    classname = classnames[tree]
    if classname == _RNTUPLE_CLASSNAME:
        raise InputFileError(
            f"{tree!r} in {str(path)!r} is an RNTuple, but jetnu reads TTrees; rewrite it as a TTree "
            f"with uproot's file.mktree({tree!r}, ...) and extend() (uproot 5.7 writes an RNTuple "
            f"for file[{tree!r}] = ...)",
            path=path,
            tree=tree,
        )
    if classname not in _TREE_CLASSNAMES:
        raise InputFileError(
            f"{tree!r} in {str(path)!r} is a {classname}, not a TTree; trees in the file: {trees}",
            path=path,
            tree=tree,
        )

    try:
        return file[tree]
    except _UPROOT_ERRORS as error:
        raise InputFileError(f"cannot read tree {tree!r} in {str(path)!r}: {error}", path=path, tree=tree) from error


def _check_branches(ttree, schema: TreeSchema, path: Path, tree: str) -> None:
    existing = list(ttree.keys(recursive=True))
    missing = [name for name in schema.branches if name not in existing]
    if missing:
        problems = []
        for name in missing:
            closest = difflib.get_close_matches(name, existing, n=1)
            hint = f" (closest existing: {closest[0]!r})" if closest else ""
            problems.append(f"{name!r}{hint}")
        noun = "branch" if len(missing) == 1 else "branches"
        listed_branches = sorted(existing)
        if len(listed_branches) > _MAX_LISTED_BRANCHES:
            num_unlisted = len(existing) - _MAX_LISTED_BRANCHES
            listed_branches = [*listed_branches[:_MAX_LISTED_BRANCHES], f"... {num_unlisted} more"]
        raise MissingBranchError(
            f"tree {tree!r} in {str(path)!r} is missing {noun} {', '.join(problems)}; "
            f"existing branches: {listed_branches}",
            path=path,
            tree=tree,
            branch=missing[0],
        )

    for name in schema.branches:
        jagged = name in schema.jagged
        problem = _branch_type_problem(ttree[name], schema.kind_of(name), jagged)
        if problem is not None:
            shape = "a variable-length list of" if jagged else "one"
            raise BranchTypeError(
                f"branch {name!r} of tree {tree!r} in {str(path)!r} has the wrong type: expected "
                f"{shape} {_KIND_WORDS[schema.kind_of(name)]} value per entry, received {problem}",
                path=path,
                tree=tree,
                branch=name,
            )


def _branch_type_problem(branch, kind: str, jagged: bool) -> str | None:
    """Describe how a branch differs from the expected kind and shape, or return None when it matches."""
    interpretation = branch.interpretation
    received = f"{branch.typename!r} (uproot interpretation {interpretation!r})"

    if jagged:
        if not isinstance(interpretation, uproot.AsJagged):
            return received
        interpretation = interpretation.content

    if not isinstance(interpretation, uproot.AsDtype):
        return received
    dtype = interpretation.to_dtype
    if dtype.shape != () or dtype.kind != kind:
        return received
    return None


def _iterate_checked(
    path: Path, schema: TreeSchema, tree: str, step_size: int, entry_start: int, entry_stop: int
) -> Iterator[tuple[int, ak.Array]]:
    with _open_root(path) as file:
        ttree = _get_tree(file, path, tree)
        chunks = ttree.iterate(
            schema.branches,
            step_size=step_size,
            entry_start=entry_start,
            entry_stop=entry_stop,
            library="ak",
            report=True,
        )
        while True:
            # Only uproot's own reading is wrapped, so errors raised by the consumer pass unchanged.
            try:
                arrays, report = next(chunks)
            except StopIteration:
                return
            except _UPROOT_ERRORS as error:
                raise InputFileError(
                    f"failed to read entries {entry_start}..{entry_stop} of tree {tree!r} in "
                    f"{str(path)!r}: {error}",
                    path=path,
                    tree=tree,
                ) from error

            first_entry = int(report.tree_entry_start)
            _check_jagged_lengths(arrays, schema, path, tree, first_entry)
            logger.debug("read entries %d..%d of %s:%s", first_entry, report.tree_entry_stop, path, tree)
            yield first_entry, arrays


def _check_jagged_lengths(arrays: ak.Array, schema: TreeSchema, path: Path, tree: str, first_entry: int) -> None:
    # Jagged branches written under different counters could disagree in length per entry.
    names = list(schema.jagged)
    if len(names) < 2:
        return
    reference = ak.to_numpy(ak.num(arrays[names[0]], axis=1))
    for name in names[1:]:
        lengths = ak.to_numpy(ak.num(arrays[name], axis=1))
        bad = np.flatnonzero(lengths != reference)
        if bad.size:
            entry = first_entry + int(bad[0])
            raise InputFileError(
                f"entry {entry} of tree {tree!r} in {str(path)!r}: branch {name!r} has {lengths[bad[0]]} "
                f"values but {names[0]!r} has {reference[bad[0]]}; all constituent branches must share "
                f"one counter",
                path=path,
                tree=tree,
                branch=name,
            )
