"""Read neutrino detector trees (``events``) from ROOT files: validate first, then read in entry ranges.

The layout is `jetnu.data.schema.EVENT_SCHEMA` plus one hit-intensity branch: ``hit_adc``
for ``intensity="adc"`` or ``hit_energy`` for ``intensity="energy"``
(`EVENT_INTENSITY_BRANCHES`). Only that one of the two is required, so a file with ADC
values alone still trains an ADC-based spec. Validation and chunked reading are the ones
of `jetnu.data.reader`, so the errors carry the same file, tree and branch details.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import awkward as ak

from jetnu.data.reader import (
    DEFAULT_STEP_SIZE,
    _iterate_checked,
    check_step_size,
    join_chunks,
    resolve_entry_range,
    validate_tree,
)
from jetnu.data.schema import (
    EVENT_HIT_BRANCHES,
    EVENT_INTENSITY_BRANCHES,
    EVENT_SCALAR_BRANCHES,
    EVENT_TREE,
    TreeSchema,
)
from jetnu.data.spec import InputSpec


def event_schema(intensity: str = "adc", tree: str = EVENT_TREE) -> TreeSchema:
    """Return the schema of an ``events`` tree read for ``intensity`` ("adc" or "energy")."""
    if intensity not in EVENT_INTENSITY_BRANCHES:
        raise ValueError(
            f"invalid hit intensity {intensity!r}; expected one of {list(EVENT_INTENSITY_BRANCHES)}"
        )
    hits = {**EVENT_HIT_BRANCHES, EVENT_INTENSITY_BRANCHES[intensity]: "f"}
    return TreeSchema(tree, dict(EVENT_SCALAR_BRANCHES), hits)


def validate_event_file(path: str | Path, spec_or_intensity: InputSpec | str = "adc", tree: str | None = None) -> int:
    """Check an events file from its metadata alone and return its number of entries.

    ``spec_or_intensity`` is a pixel-map `InputSpec` (its ``intensity`` and ``tree`` are
    used) or an intensity name, "adc" or "energy". ``tree`` overrides the tree name, which
    otherwise is the spec's tree or ``events``. Raises FileNotFoundError, InputFileError
    (not a readable ROOT file, an RNTuple or another object in place of a TTree),
    MissingTreeError, MissingBranchError, BranchTypeError or EmptyTreeError. Branches
    beyond the schema are allowed and ignored.
    """
    intensity, tree = _intensity_and_tree(spec_or_intensity, tree)
    return validate_tree(path, event_schema(intensity, tree), tree=tree)


def iterate_events(
    path: str | Path,
    *,
    intensity: str = "adc",
    tree: str = EVENT_TREE,
    step_size: int = DEFAULT_STEP_SIZE,
    entry_start: int | None = None,
    entry_stop: int | None = None,
) -> Iterator[tuple[int, ak.Array]]:
    """Yield ``(first_entry, events)`` chunks of at most ``step_size`` entries.

    ``events`` is an awkward record array whose fields are exactly the branches of
    `event_schema` for ``intensity``: ``label`` and ``nu_energy`` per event, and
    variable-length lists per hit of ``hit_view``, ``hit_plane``, ``hit_cell`` and the
    intensity branch. ``first_entry`` is the tree entry number of the chunk's first event.
    The file and the range ``entry_start..entry_stop`` (stop excluded, default the whole
    tree) are checked when this function is called, before the first chunk is requested.
    Hit branches written under different counters raise InputFileError naming the entry.
    """
    schema = event_schema(intensity, tree)
    step_size = check_step_size(step_size)
    num_entries = validate_tree(path, schema, tree=tree)
    path = Path(path).expanduser()
    entry_start, entry_stop = resolve_entry_range(path, tree, num_entries, entry_start, entry_stop)

    # NOTE: `_iterate_checked` is the chunk loop of jetnu.data.reader, shared so that both
    # trees wrap uproot's errors alike. It is private there, so a rename must update this call.
    return _iterate_checked(path, schema, tree, step_size, entry_start, entry_stop)


def read_events(
    path: str | Path,
    *,
    intensity: str = "adc",
    tree: str = EVENT_TREE,
    step_size: int = DEFAULT_STEP_SIZE,
    entry_start: int | None = None,
    entry_stop: int | None = None,
) -> ak.Array:
    """Read the events ``entry_start..entry_stop`` into one awkward array (see `iterate_events`)."""
    return join_chunks(
        iterate_events(
            path, intensity=intensity, tree=tree, step_size=step_size, entry_start=entry_start, entry_stop=entry_stop
        )
    )


def _intensity_and_tree(spec_or_intensity: InputSpec | str, tree: str | None) -> tuple[str, str]:
    if isinstance(spec_or_intensity, InputSpec):
        if spec_or_intensity.kind != "pixel_map":
            raise ValueError(
                f"events files are read for pixel maps, but the input spec has kind {spec_or_intensity.kind!r}; "
                f"use jetnu.data.reader.validate_jet_file for jet images"
            )
        intensity = spec_or_intensity.intensity
        default_tree = spec_or_intensity.tree
    else:
        intensity = spec_or_intensity
        default_tree = EVENT_TREE
    return intensity, default_tree if tree is None else tree
