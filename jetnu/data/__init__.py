"""Input data: ROOT jet and event trees, their validation, jet images, pixel maps and the HDF5 image cache."""

from jetnu.data.cache import cache_path_for, load_or_build_images, validate_input_file
from jetnu.data.errors import (
    BadValueError,
    BranchTypeError,
    EmptyTreeError,
    InputFileError,
    MissingBranchError,
    MissingTreeError,
)
from jetnu.data.event_reader import event_schema, iterate_events, read_events, validate_event_file
from jetnu.data.images import build_jet_images, resize_images
from jetnu.data.pixelmaps import (
    PixelMapCounts,
    build_pixel_maps,
    build_pixel_maps_with_counts,
    warn_pixel_map_counts,
)
from jetnu.data.reader import (
    DEFAULT_STEP_SIZE,
    check_labels,
    iterate_jets,
    jet_labels,
    read_jets,
    resolve_entry_range,
    validate_jet_file,
    validate_tree,
)
from jetnu.data.schema import (
    EVENT_INTENSITY_BRANCHES,
    EVENT_SCHEMA,
    EVENT_TREE,
    JET_CLASS_NAMES,
    JET_SCHEMA,
    JET_TREE,
    NEUTRINO_CLASS_NAMES,
    TreeSchema,
)
from jetnu.data.spec import InputSpec

__all__ = [
    "DEFAULT_STEP_SIZE",
    "EVENT_INTENSITY_BRANCHES",
    "EVENT_SCHEMA",
    "EVENT_TREE",
    "JET_CLASS_NAMES",
    "JET_SCHEMA",
    "JET_TREE",
    "NEUTRINO_CLASS_NAMES",
    "BadValueError",
    "BranchTypeError",
    "EmptyTreeError",
    "InputFileError",
    "InputSpec",
    "MissingBranchError",
    "MissingTreeError",
    "PixelMapCounts",
    "TreeSchema",
    "build_jet_images",
    "build_pixel_maps",
    "build_pixel_maps_with_counts",
    "cache_path_for",
    "check_labels",
    "event_schema",
    "iterate_events",
    "iterate_jets",
    "jet_labels",
    "load_or_build_images",
    "read_events",
    "read_jets",
    "resize_images",
    "resolve_entry_range",
    "validate_event_file",
    "validate_input_file",
    "validate_jet_file",
    "validate_tree",
    "warn_pixel_map_counts",
]
