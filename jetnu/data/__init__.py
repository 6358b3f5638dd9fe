"""Input data: ROOT jet trees, their validation, jet images and the HDF5 image cache."""

from jetnu.data.cache import cache_path_for, load_or_build_images
from jetnu.data.errors import (
    BadValueError,
    BranchTypeError,
    EmptyTreeError,
    InputFileError,
    MissingBranchError,
    MissingTreeError,
)
from jetnu.data.images import build_jet_images, resize_images
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
from jetnu.data.schema import JET_CLASS_NAMES, JET_SCHEMA, JET_TREE, TreeSchema
from jetnu.data.spec import InputSpec

__all__ = [
    "DEFAULT_STEP_SIZE",
    "JET_CLASS_NAMES",
    "JET_SCHEMA",
    "JET_TREE",
    "BadValueError",
    "BranchTypeError",
    "EmptyTreeError",
    "InputFileError",
    "InputSpec",
    "MissingBranchError",
    "MissingTreeError",
    "TreeSchema",
    "build_jet_images",
    "cache_path_for",
    "check_labels",
    "iterate_jets",
    "jet_labels",
    "load_or_build_images",
    "read_jets",
    "resize_images",
    "resolve_entry_range",
    "validate_jet_file",
    "validate_tree",
]
