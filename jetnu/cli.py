"""The ``jetnu`` console script: ``jetnu COMMAND ...`` runs ``python -m jetnu.COMMAND ...``."""

from __future__ import annotations

import importlib
import logging
import sys

# command -> (module whose main(argv) returns an exit status, help text); train's status comes from run(argv)
COMMANDS = {
    "generate": ("jetnu.generate", "generate Pythia8 jet or neutrino detector samples into ROOT files"),
    "train": ("jetnu.train", "train a tagger (LightningCLI; --help lists every option)"),
    "evaluate": ("jetnu.evaluate", "compute metrics, ROC curves and a substructure baseline for checkpoints"),
    "data": ("jetnu.data.__main__", "convert the reference top-tagging HDF5 into a jets ROOT file"),
}


def setup_command_logging() -> None:
    """Send jetnu's INFO messages to stderr with a ``[jetnu]`` prefix, once per process."""
    logger = logging.getLogger("jetnu")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[jetnu] %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: jetnu COMMAND [ARGS ...]\n\ncommands:")
        for name, (_, help_text) in COMMANDS.items():
            print(f"  {name:<10} {help_text}")
        print("\n`jetnu COMMAND --help` shows the options of one command.")
        return 0 if argv else 2

    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"jetnu: unknown command {command!r}; choose one of {sorted(COMMANDS)}", file=sys.stderr)
        return 2

    # sys.argv stays as it is: Lightning's DDP launcher restarts `jetnu train ...` from it.
    module = importlib.import_module(COMMANDS[command][0])
    entry = module.run if command == "train" else module.main
    return entry(rest)


if __name__ == "__main__":
    raise SystemExit(main())
