"""Convert a reference-dataset HDF5 file into a ROOT file with the `jets` tree."""

from __future__ import annotations

import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from jetnu.data.reader import DEFAULT_STEP_SIZE
from jetnu.data.reference import REFERENCE_KEY, iterate_reference_batches, validate_reference_file
from jetnu.sim.jet_batch import JetTreeWriter

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConversionSummary:
    """Record of one conversion: paths, jet counts per class, constituents and wall time."""

    source: Path
    out: Path
    n_jets: int
    n_top: int
    n_constituents: int
    wall_time_s: float

    def describe(self) -> str:
        """Return a one-line summary for the end of a command-line run."""
        per_jet = self.n_constituents / self.n_jets if self.n_jets else 0.0
        rate = self.n_jets / self.wall_time_s if self.wall_time_s > 0 else float("inf")
        return (
            f"converted {self.n_jets} jets ({self.n_top} top, {self.n_jets - self.n_top} QCD, "
            f"{per_jet:.1f} constituents per jet) from {self.source} to {self.out} in "
            f"{self.wall_time_s:.1f} s ({rate:.0f} jets/s)"
        )


def convert_reference_file(
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    key: str = REFERENCE_KEY,
    step_size: int = DEFAULT_STEP_SIZE,
    progress: bool | None = None,
) -> ConversionSummary:
    """Write the jets of a reference-dataset HDF5 file as the TTree `jets` of a ROOT file.

    Rows are read and written ``step_size`` at a time, so memory stays bounded. The
    output is written under a temporary name in the folder of ``out`` and renamed when
    complete, and the temporary file is removed on any error or interrupt. ``progress``
    shows a tqdm bar on stderr: None shows it only when stderr is a terminal.

    Raises the errors of `validate_reference_file`, ValueError when ``out`` is the source
    file, and OSError when the output cannot be written.
    """
    source = Path(source)
    out = Path(out)
    num_rows = validate_reference_file(source, key=key)
    if out.exists() and out.resolve() == source.resolve():
        raise ValueError(f"the output file {str(out)!r} is the input file; choose another output path")
    batches = iterate_reference_batches(source, key=key, step_size=step_size)

    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f"{out.name}.{secrets.token_hex(4)}.tmp")
    start = time.perf_counter()
    n_top = 0
    n_constituents = 0
    try:
        disable = None if progress is None else not progress
        bar = tqdm(total=num_rows, unit="jet", unit_scale=True, desc=f"converting {source.name}", disable=disable)
        with bar, JetTreeWriter(temporary) as writer:
            for _, batch in batches:
                writer.write(batch)
                n_top += int(np.count_nonzero(batch.scalars["label"] == 1))
                n_constituents += int(batch.counts.sum())
                bar.update(len(batch))
        os.replace(temporary, out)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise

    summary = ConversionSummary(
        source=source,
        out=out,
        n_jets=num_rows,
        n_top=n_top,
        n_constituents=n_constituents,
        wall_time_s=time.perf_counter() - start,
    )
    logger.debug("%s", summary.describe())
    return summary
