"""Build images chunk by chunk and cache them in HDF5 beside the source file.

The input spec's ``kind`` selects what is built: jet images from a ``jets`` tree
(`jetnu.data.images`) or detector pixel maps from an ``events`` tree
(`jetnu.data.pixelmaps`). Both are cached the same way.

A cache file belongs to one source file, tree, entry range and image-changing part of the
`InputSpec` (`InputSpec.image_key`, which includes the kind). Its name is derived from the
source's absolute path, the tree, the entry range and the image key. Its HDF5 attributes
also store the source's size and modification time (``st_mtime_ns``). A cache file is
used only when all of these match, so editing the source file or changing the spec
rebuilds the images. A hit never opens the ROOT file. ``resize_to`` and ``class_names``
do not change built images, so they share a cache.

Layout of a cache file: dataset ``images`` (entries, channels, height, width) float32,
dataset ``labels`` (entries,) int64, and attributes ``spec_json``, ``image_key``,
``source_path``, ``source_size``, ``source_mtime_ns``, ``tree``, ``entry_start``,
``entry_stop`` (the requested range; -1 for an open end) and ``format_version``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path

import awkward as ak
import h5py
import numpy as np
from tqdm.auto import tqdm

from jetnu.data.event_reader import iterate_events, validate_event_file
from jetnu.data.images import build_jet_images
from jetnu.data.pixelmaps import PixelMapCounts, build_pixel_maps_with_counts, warn_pixel_map_counts
from jetnu.data.reader import (
    DEFAULT_STEP_SIZE,
    check_entry_number,
    check_labels,
    check_step_size,
    iterate_jets,
    jet_labels,
    resolve_entry_range,
    validate_jet_file,
)
from jetnu.data.spec import InputSpec

logger = logging.getLogger(__name__)

CACHE_DIR_NAME = ".jetnu_cache"
CACHE_FORMAT_VERSION = 1

# Errors that mean "this cache file is unusable" rather than a bug: h5py raises OSError for
# files that are not HDF5 or are truncated, KeyError for missing datasets or attributes.
_CACHE_READ_ERRORS = (OSError, KeyError, ValueError, TypeError)

# Words for logs and progress bars: what a cache file contains, and what one entry is.
_IMAGE_WORDS = {"jet_image": "jet image", "pixel_map": "pixel map"}
_ENTRY_WORDS = {"jet_image": "jet", "pixel_map": "event"}


class _StaleCacheError(Exception):
    """A cache file whose stored key differs from the one requested."""


def validate_input_file(path: str | Path, spec: InputSpec, *, tree: str | None = None) -> int:
    """Check a source file for ``spec`` from its metadata alone and return its number of entries.

    A ``jet_image`` spec needs a jet tree (`jetnu.data.reader.validate_jet_file`), a
    ``pixel_map`` spec an events tree with the hit intensity branch of ``spec.intensity``
    (`jetnu.data.event_reader.validate_event_file`). ``tree`` defaults to ``spec.tree``.
    Raises the typed errors of `jetnu.data.errors` (and FileNotFoundError).
    """
    tree = spec.tree if tree is None else tree
    if spec.kind == "pixel_map":
        return validate_event_file(path, spec, tree)
    return validate_jet_file(path, tree)


def cache_path_for(
    path: str | Path,
    spec: InputSpec,
    *,
    tree: str | None = None,
    cache_dir: str | Path | None = None,
    entry_start: int | None = None,
    entry_stop: int | None = None,
) -> Path:
    """Return the cache file that `load_or_build_images` uses for these arguments.

    The default folder is ``.jetnu_cache`` beside the source file. The file name does not
    depend on the source's size or modification time, so a rebuild after an edit replaces
    the old cache file instead of adding one.
    """
    source = _resolve_source(path)
    tree = spec.tree if tree is None else tree
    folder = source.parent / CACHE_DIR_NAME if cache_dir is None else Path(cache_dir).expanduser()

    start = _range_attr("entry_start", entry_start)
    stop = _range_attr("entry_stop", entry_stop)
    name_key = json.dumps([str(source), tree, start, stop, spec.image_key()])
    digest = hashlib.sha256(name_key.encode()).hexdigest()[:16]
    return folder / f"{source.stem}.{tree}.{digest}.h5"


def load_or_build_images(
    path: str | Path,
    spec: InputSpec,
    *,
    tree: str | None = None,
    cache_dir: str | Path | None = None,
    step_size: int = DEFAULT_STEP_SIZE,
    entry_start: int | None = None,
    entry_stop: int | None = None,
    progress: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images, labels)`` for the entries ``entry_start..entry_stop`` of a source file.

    ``spec.kind`` selects the source: jet images from a jet tree or pixel maps from an
    events tree. ``images`` has shape (entries, channels, height, width) and dtype
    float32; ``labels`` is int64, checked to lie in ``range(len(spec.class_names))``.
    Images come from the cache when a matching cache file exists. Otherwise they are built
    ``step_size`` entries at a time and cached (see the module docstring), with one
    warning per build for all-zero images and, for pixel maps, one for dropped hits.
    ``tree`` defaults to ``spec.tree``. ``progress`` shows a tqdm bar in jets/s or
    events/s: None shows it only on a terminal, True always, False never. A cache file
    that cannot be read or does not match is rebuilt, with an INFO log line.
    """
    source = _resolve_source(path)
    tree = spec.tree if tree is None else tree
    step_size = check_step_size(step_size)
    cache_path = cache_path_for(
        source, spec, tree=tree, cache_dir=cache_dir, entry_start=entry_start, entry_stop=entry_stop
    )
    expected = _expected_attrs(source, spec, tree, entry_start, entry_stop)
    image_word = _IMAGE_WORDS[spec.kind]

    if cache_path.exists():
        try:
            images, labels = _read_cache(cache_path, expected, spec)
        except _StaleCacheError as error:
            logger.info("rebuilding %s cache %s: %s", image_word, cache_path, error)
        except _CACHE_READ_ERRORS as error:
            logger.info("rebuilding unreadable %s cache %s: %s: %s", image_word, cache_path, type(error).__name__, error)
        else:
            logger.debug("loaded %d %ss from cache %s", len(images), image_word, cache_path)
            return images, _checked_cached_labels(labels, spec, source, expected)

    images, labels = _build(source, spec, tree, step_size, entry_start, entry_stop, progress)
    _write_cache(cache_path, images, labels, {**expected, "spec_json": spec.to_json()})
    logger.info("cached %d %ss of %s in %s", len(images), image_word, source, cache_path)
    return images, labels


def _resolve_source(path: str | Path) -> Path:
    source = Path(path).expanduser().resolve()
    if not source.is_file():
        raise FileNotFoundError(f"input file not found: {str(source)!r}")
    return source


def _range_attr(name: str, entry: int | None) -> int:
    return -1 if entry is None else check_entry_number(name, entry)


def _expected_attrs(source: Path, spec: InputSpec, tree: str, entry_start, entry_stop) -> dict:
    stat = source.stat()
    return {
        "format_version": CACHE_FORMAT_VERSION,
        "image_key": spec.image_key(),
        "source_path": str(source),
        "source_size": int(stat.st_size),
        "source_mtime_ns": int(stat.st_mtime_ns),
        "tree": tree,
        "entry_start": _range_attr("entry_start", entry_start),
        "entry_stop": _range_attr("entry_stop", entry_stop),
    }


def _build(source: Path, spec: InputSpec, tree: str, step_size: int, entry_start, entry_stop, progress):
    num_entries = validate_input_file(source, spec, tree=tree)
    start, stop = resolve_entry_range(source, tree, num_entries, entry_start, entry_stop)

    images = np.empty((stop - start, *spec.image_shape), dtype=np.float32)
    labels = np.empty(stop - start, dtype=np.int64)
    fill = _fill_pixel_maps if spec.kind == "pixel_map" else _fill_jet_images

    disable = None if progress is None else not progress
    description = f"{_IMAGE_WORDS[spec.kind]}s {source.name}"
    bar = tqdm(total=stop - start, unit=_ENTRY_WORDS[spec.kind], unit_scale=True, desc=description, disable=disable)
    with bar:
        fill(source, spec, tree, step_size, start, stop, images, labels, bar)
    return images, labels


def _fill_jet_images(source: Path, spec: InputSpec, tree: str, step_size: int, start, stop, images, labels, bar):
    num_empty = 0
    for first_entry, jets in iterate_jets(source, tree=tree, step_size=step_size, entry_start=start, entry_stop=stop):
        rows = slice(first_entry - start, first_entry - start + len(jets))
        labels[rows] = jet_labels(jets, spec.class_names, entry_offset=first_entry, source=source)
        images[rows] = build_jet_images(jets, spec, entry_offset=first_entry, source=source, warn_empty=False)
        num_empty += int(np.count_nonzero(~images[rows].any(axis=(1, 2, 3))))
        bar.update(len(jets))

    if num_empty:
        warnings.warn(
            f"{num_empty} of {stop - start} jets of {str(source)!r} (tree {tree!r}) have no constituents "
            f"with nonzero {spec.intensity} inside the {spec.height}x{spec.width} image window; their "
            f"images are all zeros",
            stacklevel=4,
        )


def _fill_pixel_maps(source: Path, spec: InputSpec, tree: str, step_size: int, start, stop, images, labels, bar):
    counts = PixelMapCounts()
    chunks = iterate_events(
        source, intensity=spec.intensity, tree=tree, step_size=step_size, entry_start=start, entry_stop=stop
    )
    for first_entry, events in chunks:
        rows = slice(first_entry - start, first_entry - start + len(events))
        event_labels = ak.to_numpy(events["label"]).astype(np.int64)
        labels[rows] = check_labels(event_labels, spec.class_names, entry_offset=first_entry, source=source)
        images[rows], chunk_counts = build_pixel_maps_with_counts(
            events, spec, entry_offset=first_entry, source=source
        )
        counts = counts + chunk_counts
        bar.update(len(events))

    # One warning per build for the whole range, not one per chunk.
    warn_pixel_map_counts(counts, spec, source=source, stacklevel=5)


def _read_cache(cache_path: Path, expected: dict, spec: InputSpec) -> tuple[np.ndarray, np.ndarray]:
    with h5py.File(cache_path, "r") as file:
        for name, value in expected.items():
            stored = file.attrs[name]
            stored = stored.item() if isinstance(stored, np.generic) else stored
            if stored != value:
                raise _StaleCacheError(f"stored {name} {stored!r} differs from {value!r}")

        images = file["images"][...]
        labels = file["labels"][...]

    if images.dtype != np.float32 or images.ndim != 4 or images.shape[1:] != spec.image_shape:
        raise _StaleCacheError(
            f"images have dtype {images.dtype} and shape {images.shape}, expected float32 (entries, {spec.image_shape})"
        )
    if labels.dtype != np.int64 or labels.shape != (len(images),):
        raise _StaleCacheError(
            f"labels have dtype {labels.dtype} and shape {labels.shape}, expected int64 ({len(images)},)"
        )
    return images, labels


def _checked_cached_labels(labels: np.ndarray, spec: InputSpec, source: Path, expected: dict) -> np.ndarray:
    # Class names are not part of the cache key, so cached labels are checked against this spec.
    first_entry = max(expected["entry_start"], 0)
    return check_labels(labels, spec.class_names, entry_offset=first_entry, source=source)


def _write_cache(cache_path: Path, images: np.ndarray, labels: np.ndarray, attrs: dict) -> None:
    try:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(
            f"cannot create the image cache folder {str(cache_path.parent)!r}: {error}; pass a writable "
            f"folder as --data.cache_dir (cache_dir= in Python)"
        ) from error

    # Written under a temporary name and renamed when complete, so a reader never sees a partial file
    # and concurrent builders (e.g. several training ranks) each rename a whole file.
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{cache_path.name}.", suffix=".tmp", dir=cache_path.parent)
    except OSError as error:
        raise OSError(
            f"cannot write the image cache in {str(cache_path.parent)!r}: {error}; pass a writable folder as "
            f"--data.cache_dir (cache_dir= in Python)"
        ) from error
    os.close(handle)
    try:
        with h5py.File(temporary, "w") as file:
            chunk_rows = max(1, min(len(images), 256))
            file.create_dataset(
                "images",
                data=images,
                chunks=(chunk_rows, *images.shape[1:]),
                compression="gzip",
                compression_opts=1,
                shuffle=True,
            )
            file.create_dataset("labels", data=labels)
            for name, value in attrs.items():
                file.attrs[name] = value
        os.replace(temporary, cache_path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
