"""Data tools from the command line.

    python -m jetnu.data convert top_tagging/train.h5 data/reference_train.root

`python -m jetnu.data COMMAND --help` lists the options of one command.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from jetnu.data.reader import DEFAULT_STEP_SIZE
from jetnu.data.reference import REFERENCE_KEY

logger = logging.getLogger(__name__)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_convert_command(subparsers) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert a top-tagging reference HDF5 file into a ROOT jet tree",
        description=(
            "Read a file of the public top-tagging reference dataset (pandas HDFStore in fixed "
            "format, columns E_i, PX_i, PY_i, PZ_i and is_signal_new) with h5py and write its jets "
            "as the TTree 'jets' of a ROOT file: jet pT, eta, phi and mass from the summed "
            "constituents, the label from is_signal_new, constituents without padding, sorted by pT."
        ),
    )
    parser.add_argument("source", metavar="IN.h5", help="reference-dataset HDF5 file")
    parser.add_argument("out", metavar="OUT.root", help="output ROOT file, replaced if it exists")
    parser.add_argument(
        "--step-size",
        type=_positive_int,
        default=DEFAULT_STEP_SIZE,
        metavar="N",
        help="jets read and written per chunk (default: %(default)s)",
    )
    parser.add_argument(
        "--key", default=REFERENCE_KEY, help="HDFStore key of the DataFrame (default: %(default)s)"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(run=_run_convert)


def _run_convert(args: argparse.Namespace) -> int:
    from jetnu.data.convert import convert_reference_file

    try:
        summary = convert_reference_file(
            args.source,
            args.out,
            key=args.key,
            step_size=args.step_size,
            progress=False if args.no_progress else None,
        )
    except KeyboardInterrupt:
        logger.error("interrupted, so %s was not written", args.out)
        return 130
    except (OSError, ValueError) as error:  # InputFileError and its subclasses are ValueErrors
        logger.error("conversion failed: %s", error)
        return 1

    logger.info("%s", summary.describe())
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Build the parser with one subcommand per data tool."""
    parser = argparse.ArgumentParser(prog="python -m jetnu.data", description="Data tools for jetnu input files.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_convert_command(subparsers)
    return parser


def _interrupt_on_sigterm(signum, frame):
    raise KeyboardInterrupt(f"received signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Run one data subcommand and return the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    # Batch systems stop jobs with SIGTERM, which is handled like Ctrl-C so partial output is removed.
    if threading.current_thread() is not threading.main_thread():
        return args.run(args)
    previous_handler = signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    try:
        return args.run(args)
    finally:
        signal.signal(signal.SIGTERM, previous_handler)


if __name__ == "__main__":
    raise SystemExit(main())
