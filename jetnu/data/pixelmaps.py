"""Pixel maps: detector hits of many events turned into (views, planes, cells) grids at once.

Every step works on the flattened hits of all events together (per-event reductions with
``np.bincount`` and ``np.minimum.at``), so there is no Python loop over events. For an
`InputSpec` of kind ``"pixel_map"`` with ``channels`` views, ``height`` planes and
``width`` cells:

1. **views**: ``hit_view`` selects the channel (0 = XZ, 1 = YZ). A view outside
   ``0..channels - 1`` raises BadValueError, because the spec and the file disagree
   about the detector.
2. **planes**: the detector's planes alternate between the views along the beam, and
   ``hit_plane`` counts the planes of both views. The plane index within a view is
   therefore ``hit_plane // 2``. Under this assumption the hits of one view all share one
   plane parity (which parity does not matter). A view whose hits have both parities
   within one call raises BadValueError, because halving would then merge planes.
3. **window**: the plane window of an event starts at its first hit plane (the smallest
   ``hit_plane // 2`` over both views) and spans ``height`` planes, the same planes in
   both views. The cell window is placed per view and per event around the median
   ``hit_cell`` of that view's hits. The median is unweighted and rounded down when it
   falls between two cells, and it lands in column ``width // 2``. The window therefore
   covers cells ``median - width // 2`` to ``median - width // 2 + width - 1``. A median
   keeps a few stray hits from pulling the window off the main activity. Hits with a negative plane
   or cell number are dropped before the window is placed. Hits outside the window are
   dropped. Both kinds of dropped hits are counted in one warning per call.
4. **intensity**: each pixel contains the summed ``hit_adc`` (ADC counts) or
   ``hit_energy`` (GeV) of its hits, as ``spec.intensity`` selects. NaN, infinite or
   negative values raise BadValueError naming the entry, the branch and the file.
5. **normalise**: ``"scale"`` divides by ``spec.value_scale``, ``"sum"`` divides each
   event's map (all views together) by its sum, ``"none"`` keeps the intensity's unit.

Events without hits inside the window give all-zero maps, counted in one warning per call.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import awkward as ak
import numpy as np

from jetnu.data.errors import BadValueError
from jetnu.data.schema import EVENT_INTENSITY_BRANCHES
from jetnu.data.spec import InputSpec

# Events per np.bincount call are capped so its float64 buffer stays near 32 MB (maps up to 4M pixels).
_MAX_PIXELS_PER_BLOCK = 1 << 22

_MAX_LISTED_ENTRIES = 5


@dataclass(frozen=True)
class PixelMapCounts:
    """Hit and event counts of one or more pixel-map builds, for the warnings about dropped hits and empty maps."""

    num_events: int = 0
    num_hits: int = 0
    num_negative: int = 0  # hits with a negative plane or cell number, dropped
    num_outside: int = 0  # hits outside the plane or cell window, dropped
    empty_entries: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # entries with all-zero maps

    @property
    def num_dropped(self) -> int:
        return self.num_negative + self.num_outside

    def __add__(self, other: "PixelMapCounts") -> "PixelMapCounts":
        return PixelMapCounts(
            num_events=self.num_events + other.num_events,
            num_hits=self.num_hits + other.num_hits,
            num_negative=self.num_negative + other.num_negative,
            num_outside=self.num_outside + other.num_outside,
            empty_entries=np.concatenate([self.empty_entries, other.empty_entries]),
        )


def build_pixel_maps(events: ak.Array, spec: InputSpec, *, entry_offset: int = 0, source=None) -> np.ndarray:
    """Build one pixel map per event as a float32 array of shape (events, views, planes, cells).

    ``events`` needs the jagged fields ``hit_view``, ``hit_plane``, ``hit_cell`` and the
    intensity field of ``spec.intensity`` (``hit_adc`` or ``hit_energy``). The module
    docstring describes the window and the normalisation. Dropped hits and all-zero maps
    are each counted in at most one warning per call.

    Raises BadValueError naming the entry (``entry_offset`` + position in ``events``), the
    branch and ``source`` for a NaN, infinite or negative intensity, a view outside the
    spec's channels, or a view whose planes do not alternate with the other view's.
    """
    maps, counts = build_pixel_maps_with_counts(events, spec, entry_offset=entry_offset, source=source)
    warn_pixel_map_counts(counts, spec, source=source, stacklevel=3)
    return maps


def build_pixel_maps_with_counts(
    events: ak.Array, spec: InputSpec, *, entry_offset: int = 0, source=None
) -> tuple[np.ndarray, PixelMapCounts]:
    """Build pixel maps like `build_pixel_maps`, but return the counts instead of warning.

    Chunked readers add up the counts of all chunks and call `warn_pixel_map_counts` once.
    """
    if spec.kind != "pixel_map":
        raise ValueError(f"build_pixel_maps needs an InputSpec of kind 'pixel_map', got kind {spec.kind!r}")

    num_events = len(events)
    channels, height, width = spec.image_shape
    if num_events == 0:
        return np.zeros((0, *spec.image_shape), dtype=np.float32), PixelMapCounts()

    hits = _HitView(events, entry_offset, source)
    view = hits.integers("hit_view")
    plane = hits.integers("hit_plane")
    cell = hits.integers("hit_cell")
    weight = hits.intensities(EVENT_INTENSITY_BRANCHES[spec.intensity])
    event_index = hits.event_index
    hits.check_views(view, channels)

    # Hits with negative plane or cell numbers take no part in placing the window.
    valid = (plane >= 0) & (cell >= 0)
    num_negative = int(valid.size - np.count_nonzero(valid))
    event_index, view, plane, cell, weight = (a[valid] for a in (event_index, view, plane, cell, weight))
    hits.check_plane_parity(view, plane, event_index)

    # View-local plane numbers, counted from each event's first hit plane.
    view_plane = plane // 2
    first_plane = np.full(num_events, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_plane, event_index, view_plane)
    row = view_plane - first_plane[event_index]

    cell_start = _median_cells(event_index, view, cell, num_events, channels) - width // 2  # (events, views)
    column = cell - cell_start[event_index, view]

    inside = (row < height) & (column >= 0) & (column < width)
    num_outside = int(inside.size - np.count_nonzero(inside))
    pixel = (view[inside] * height + row[inside]) * width + column[inside]
    maps = _accumulate(event_index[inside], pixel, weight[inside], num_events, channels * height * width)
    maps = maps.reshape(num_events, channels, height, width)  # (events, views, planes, cells)

    sums = maps.sum(axis=(1, 2, 3), dtype=np.float64)
    empty = sums <= 0
    if spec.normalise == "sum":
        # Dividing empty maps by 1 keeps them zero and the division in place.
        divisors = np.where(empty, 1.0, sums).astype(np.float32)
        maps /= divisors[:, None, None, None]
    elif spec.normalise == "scale":
        maps /= np.float32(spec.value_scale)

    counts = PixelMapCounts(
        num_events=num_events,
        num_hits=int(hits.counts.sum()),
        num_negative=num_negative,
        num_outside=num_outside,
        empty_entries=int(entry_offset) + np.flatnonzero(empty),
    )
    return maps, counts


def warn_pixel_map_counts(counts: PixelMapCounts, spec: InputSpec, *, source=None, stacklevel: int = 2) -> None:
    """Warn once about dropped hits and once about all-zero maps, when there are any."""
    in_file = "" if source is None else f" of {str(source)!r}"
    channels, height, width = spec.image_shape

    if counts.num_dropped:
        fraction = counts.num_dropped / max(counts.num_hits, 1)
        warnings.warn(
            f"dropped {counts.num_dropped} of {counts.num_hits} hits{in_file} ({fraction:.2%}): "
            f"{counts.num_negative} with a negative plane or cell number, {counts.num_outside} outside the "
            f"window of {height} planes from each event's first hit plane and {width} cells around the "
            f"median hit cell of each view",
            stacklevel=stacklevel,
        )

    num_empty = len(counts.empty_entries)
    if num_empty:
        intensity = EVENT_INTENSITY_BRANCHES[spec.intensity]
        first = counts.empty_entries[:_MAX_LISTED_ENTRIES].tolist()
        warnings.warn(
            f"{num_empty} of {counts.num_events} events{in_file} have no hits with nonzero {intensity!r} "
            f"inside the {channels}x{height}x{width} pixel-map window; their maps are all zeros "
            f"(first entries: {first})",
            stacklevel=stacklevel,
        )


class _HitView:
    """Flat numpy views of the jagged hit fields, with the checks that name the entry."""

    def __init__(self, events: ak.Array, entry_offset: int, source):
        self.events = events
        self.entry_offset = int(entry_offset)
        self.source = source
        self.counts = ak.to_numpy(ak.num(self._field("hit_view"), axis=1)).astype(np.int64)
        self.event_index = np.repeat(np.arange(len(events)), self.counts)

    def integers(self, name: str) -> np.ndarray:
        values = self._flat(name)
        if values.dtype.kind not in "iu":
            raise TypeError(f"field {name!r} must contain integers, got dtype {values.dtype}")
        return values.astype(np.int64)

    def intensities(self, name: str) -> np.ndarray:
        values = self._flat(name).astype(np.float64)
        bad = ~np.isfinite(values) | (values < 0)
        if bad.any():
            position = int(np.argmax(bad))
            value = float(values[position])
            problem = "is negative" if np.isfinite(value) else "is not finite"
            self._raise_bad(
                name,
                position,
                f"value {value!r} {problem}; pixel maps need finite, non-negative hit intensities",
            )
        return values

    def check_views(self, view: np.ndarray, channels: int) -> None:
        bad = (view < 0) | (view >= channels)
        if bad.any():
            position = int(np.argmax(bad))
            self._raise_bad(
                "hit_view",
                position,
                f"view {int(view[position])} is outside 0..{channels - 1} for an input spec with "
                f"{channels} channels (one per detector view)",
            )

    def check_plane_parity(self, view: np.ndarray, plane: np.ndarray, event_index: np.ndarray) -> None:
        # Halving hit_plane is right only when the planes of one view are every second plane.
        for view_number in np.unique(view):
            in_view = np.flatnonzero(view == view_number)
            parity = plane[in_view] % 2
            other = np.flatnonzero(parity != parity[0])
            if other.size == 0:
                continue
            first, mismatch = in_view[0], in_view[other[0]]
            entry = self.entry_offset + int(event_index[mismatch])
            first_entry = self.entry_offset + int(event_index[first])
            in_file = "" if self.source is None else f" of {str(self.source)!r}"
            raise BadValueError(
                f"entry {entry}{in_file}: branch 'hit_plane' value {int(plane[mismatch])} of view "
                f"{int(view_number)} has the other parity than plane {int(plane[first])} of the same view in "
                f"entry {first_entry}; pixel maps expect the planes to alternate between the views, so "
                f"that hit_plane // 2 numbers the planes of one view",
                entry=entry,
                path=self.source,
                branch="hit_plane",
            )

    def _flat(self, name: str) -> np.ndarray:
        column = self._field(name)
        lengths = ak.to_numpy(ak.num(column, axis=1))
        if not np.array_equal(lengths, self.counts):
            position = int(np.flatnonzero(lengths != self.counts)[0])
            raise ValueError(
                f"entry {self.entry_offset + position}: field {name!r} has {lengths[position]} hits "
                f"but 'hit_view' has {self.counts[position]}"
            )
        return ak.to_numpy(ak.flatten(column, axis=1))

    def _field(self, name: str) -> ak.Array:
        if name not in self.events.fields:
            raise KeyError(f"pixel maps need the field {name!r}; the events have fields {self.events.fields}")
        return self.events[name]

    def _raise_bad(self, name: str, position: int, problem: str):
        event = int(self.event_index[position])
        hit = position - int(self.counts[:event].sum())
        entry = self.entry_offset + event
        in_file = "" if self.source is None else f" of {str(self.source)!r}"
        raise BadValueError(
            f"entry {entry}{in_file}: branch {name!r} (hit {hit}) {problem}",
            entry=entry,
            path=self.source,
            branch=name,
        )


def _median_cells(event_index, view, cell, num_events: int, channels: int) -> np.ndarray:
    """Median hit cell per event and view, rounded down; 0 for a view without hits."""
    group = event_index * channels + view
    order = np.lexsort((cell, group))
    sorted_cells = cell[order]

    group_sizes = np.bincount(group, minlength=num_events * channels)
    group_starts = np.cumsum(group_sizes) - group_sizes
    has_hits = group_sizes > 0

    # Lower and upper middle hit of each group in the sorted order; equal for an odd count.
    lower = group_starts[has_hits] + (group_sizes[has_hits] - 1) // 2
    upper = group_starts[has_hits] + group_sizes[has_hits] // 2
    medians = np.zeros(num_events * channels, dtype=np.int64)
    medians[has_hits] = (sorted_cells[lower] + sorted_cells[upper]) // 2
    return medians.reshape(num_events, channels)


def _accumulate(event_index, pixel, weight, num_events: int, pixels_per_map: int) -> np.ndarray:
    """Sum ``weight`` into flat maps (events, pixels_per_map), a bounded block of events per bincount."""
    maps = np.empty((num_events, pixels_per_map), dtype=np.float32)
    events_per_block = max(1, _MAX_PIXELS_PER_BLOCK // pixels_per_map)

    # event_index is sorted, so each block of events owns one contiguous run of hits.
    for block_start in range(0, num_events, events_per_block):
        block_stop = min(block_start + events_per_block, num_events)
        lo, hi = np.searchsorted(event_index, [block_start, block_stop])
        flat_index = (event_index[lo:hi] - block_start) * pixels_per_map + pixel[lo:hi]
        summed = np.bincount(flat_index, weight[lo:hi], minlength=(block_stop - block_start) * pixels_per_map)
        maps[block_start:block_stop] = summed.reshape(block_stop - block_start, pixels_per_map)
    return maps
