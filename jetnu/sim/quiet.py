"""Silencing of output that compiled libraries write straight to standard output.

Pythia8 needs none of this: `Pythia("", False)` skips its banner and `Print:quiet = on`
the rest. FastJet has no such switch.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import fastjet


def _flush_c_stdio() -> None:
    # C++ std::cout shares the C stdio buffer by default, so a banner can sit there after
    # FastJet returns and reach the restored descriptor later.
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no libc handle on this platform
        pass


@contextmanager
def stdout_silenced() -> Iterator[None]:
    """Send everything written to file descriptor 1 to the null device while active.

    This catches output of compiled code that Python's `sys.stdout` never receives. Output of
    other threads of the process written meanwhile is lost as well, so keep the block short.
    """
    sys.stdout.flush()
    saved_fd = os.dup(1)
    null_fd = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null_fd, 1)
        yield
    finally:
        _flush_c_stdio()
        os.dup2(saved_fd, 1)
        os.close(saved_fd)
        os.close(null_fd)


def silence_fastjet_banner() -> None:
    """Run one dummy clustering with standard output silenced.

    FastJet prints its banner once per process, at the first clustering, and the Python
    binding has no switch for it. Later clusterings in this process print nothing.
    """
    with stdout_silenced():
        definition = fastjet.JetDefinition(fastjet.antikt_algorithm, 0.4)
        sequence = fastjet.ClusterSequence([fastjet.PseudoJet(1.0, 0.0, 0.0, 2.0)], definition)
        sequence.inclusive_jets()
