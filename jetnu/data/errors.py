"""Exceptions for bad input files, each carrying the file, tree and branch involved."""

from __future__ import annotations


class InputFileError(ValueError):
    """A ROOT or HDF5 input file that cannot be used as it is."""

    def __init__(self, message: str, *, path=None, tree: str | None = None, branch: str | None = None):
        self.path = None if path is None else str(path)
        self.tree = tree
        self.branch = branch
        super().__init__(message)


class MissingTreeError(InputFileError, KeyError):
    """The file has no tree of the expected name."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.args[0]


class MissingBranchError(InputFileError, KeyError):
    """The tree lacks a required branch."""

    def __str__(self) -> str:
        return self.args[0]


class BranchTypeError(InputFileError, TypeError):
    """A branch exists but has the wrong type (e.g. strings or a flat array for jagged data)."""


class EmptyTreeError(InputFileError):
    """The tree has no entries."""


class BadValueError(InputFileError):
    """An entry contains a NaN or infinite value."""

    def __init__(self, message: str, *, entry: int | None = None, **kwargs):
        self.entry = entry
        super().__init__(message, **kwargs)
