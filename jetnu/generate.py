"""Generate training samples from the command line.

    python -m jetnu.generate jets --n-jets 20000 --seed 1 --out data/jets.root --workers 4
    python -m jetnu.generate neutrino --n-events 20000 --seed 1 --out data/neutrino.root --workers 4

Each sample kind is a subcommand, and `python -m jetnu.generate COMMAND --help` lists its options.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable

from jetnu.data.schema import NEUTRINO_CLASS_NAMES
from jetnu.sim import neutrino as neutrino_sim
from jetnu.sim.detector import DetectorConfig
from jetnu.sim.jet_physics import DETECTOR_CHOICES
from jetnu.sim.pythia_jets import JetGenConfig, generate_jets

logger = logging.getLogger(__name__)


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid integer: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def _float_at_least(minimum: float, *, strict: bool) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
        if value < minimum or (strict and value == minimum) or value != value:
            bound = "greater than" if strict else "at least"
            raise argparse.ArgumentTypeError(f"must be {bound} {minimum:g}, got {text}")
        return value

    return parse


_non_negative = _float_at_least(0.0, strict=False)
_positive = _float_at_least(0.0, strict=True)


def _add_jets_command(subparsers) -> None:
    defaults = JetGenConfig()
    parser = subparsers.add_parser(
        "jets",
        help="top and QCD jets from Pythia8 pp collisions, clustered with FastJet",
        description=(
            "Generate a balanced sample of top jets (ttbar, W -> q q', truth-matched) and QCD jets "
            "(hard QCD 2 -> 2) and write it as the TTree 'jets' of a ROOT file."
        ),
    )
    parser.add_argument(
        "--n-jets",
        type=_int_at_least(2),
        required=True,
        metavar="N",
        help="total number of jets: N // 2 top, the rest QCD",
    )
    parser.add_argument(
        "--seed",
        type=_int_at_least(0),
        default=0,
        help="seed of the Pythia seeds and the shuffle (default: %(default)s)",
    )
    parser.add_argument("--out", required=True, metavar="FILE", help="output ROOT file, replaced if it exists")
    parser.add_argument(
        "--workers",
        type=_int_at_least(1),
        default=1,
        metavar="N",
        help="number of generator processes. The sample depends on it, as on --seed (default: %(default)s)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    physics = parser.add_argument_group("physics (defaults in brackets)")
    options = [
        ("--sqrt-s", _positive, defaults.sqrt_s_gev, "GEV", "pp centre-of-mass energy"),
        ("--pthat-min", _non_negative, defaults.pthat_min_gev, "GEV", "minimum pT-hat of the hard process"),
        ("--pthat-max", _positive, defaults.pthat_max_gev, "GEV", "maximum pT-hat of the hard process"),
        ("--jet-r", _positive, defaults.jet_r, "R", "anti-kT distance parameter"),
        ("--pt-min", _non_negative, defaults.pt_min_gev, "GEV", "minimum jet pT"),
        ("--pt-max", _positive, defaults.pt_max_gev, "GEV", "maximum jet pT"),
        ("--abs-eta-max", _positive, defaults.abs_eta_max, "ETA", "maximum jet |eta|"),
        (
            "--particle-abs-eta-max",
            _positive,
            defaults.particle_abs_eta_max,
            "ETA",
            "particles beyond this |eta| are dropped before clustering",
        ),
        (
            "--match-dr",
            _positive,
            defaults.match_dr,
            "DR",
            "top jets need the top, its b and both W quarks within this Delta R of the jet axis",
        ),
        (
            "--max-constituents",
            _int_at_least(1),
            defaults.max_constituents,
            "N",
            "constituents kept per jet, highest pT first",
        ),
    ]
    for flag, parse, default, metavar, text in options:
        physics.add_argument(flag, type=parse, default=default, metavar=metavar, help=f"{text} [%(default)s]")
    physics.add_argument(
        "--pythia-setting",
        action="append",
        default=[],
        metavar="'KEY = VALUE'",
        help="extra Pythia setting such as 'PartonLevel:MPI = off', read after the built-in ones (repeatable)",
    )
    _add_detector_arguments(parser)
    parser.set_defaults(run=_run_jets, parser=parser)


def _add_detector_arguments(parser: argparse.ArgumentParser) -> None:
    model = DetectorConfig()
    group = parser.add_argument_group(
        "detector model",
        "With --detector towers, the particles are replaced by detector-level constituents before "
        f"clustering. Charged particles with |eta| < {model.track_abs_eta_max:g} and pT > "
        f"{model.track_pt_min_gev:g} GeV become tracks with their momentum, and softer ones are dropped. "
        "Photons and neutral hadrons, and charged particles outside the tracker except muons, are summed "
        "into (eta, phi) towers of --tower-size. The ECAL part of a tower (photons, electrons) and its "
        "HCAL part (hadrons) are each smeared with sigma/E = a/sqrt(E/GeV) (+) b, where ECAL has "
        f"a = {model.ecal.stochastic:g}, b = {model.ecal.constant:g} and HCAL has a = "
        f"{model.hcal.stochastic:g}, b = {model.hcal.constant:g} (generic Delphes-like values, an "
        f"estimate). Towers below {model.tower_threshold_gev:g} GeV are dropped, and the rest are massless "
        "at the tower centre. Top-jet truth matching still uses the partons.",
    )
    group.add_argument(
        "--detector",
        choices=DETECTOR_CHOICES,
        default="none",
        help="jet constituents: 'none' for truth-level particles, 'towers' for tracks and towers [%(default)s]",
    )
    group.add_argument(
        "--tower-size",
        type=_positive,
        default=None,
        metavar="SIZE",
        help=(
            f"tower width in eta and phi, with --detector towers only: {model.tower_size:g} is HCAL-like, "
            f"0.0174 ECAL-like [{model.tower_size:g}]"
        ),
    )


def _detector_config(args: argparse.Namespace) -> DetectorConfig:
    if args.tower_size is None:
        return DetectorConfig()
    if args.detector != "towers":
        args.parser.error(f"--tower-size applies only with --detector towers, got --detector {args.detector}")
    return DetectorConfig(tower_size=args.tower_size)


def _run_jets(args: argparse.Namespace) -> int:
    try:
        config = JetGenConfig(
            sqrt_s_gev=args.sqrt_s,
            pthat_min_gev=args.pthat_min,
            pthat_max_gev=args.pthat_max,
            jet_r=args.jet_r,
            pt_min_gev=args.pt_min,
            pt_max_gev=args.pt_max,
            abs_eta_max=args.abs_eta_max,
            particle_abs_eta_max=args.particle_abs_eta_max,
            match_dr=args.match_dr,
            max_constituents=args.max_constituents,
            pythia_settings=tuple(args.pythia_setting),
            detector=args.detector,
            detector_config=_detector_config(args),
        )
    except ValueError as error:
        args.parser.error(str(error))

    try:
        summary = generate_jets(
            args.n_jets,
            args.seed,
            args.out,
            workers=args.workers,
            config=config,
            progress=False if args.no_progress else None,
        )
    except KeyboardInterrupt:
        logger.error("interrupted, so %s was not written", args.out)
        return 130
    except (RuntimeError, OSError, ValueError) as error:
        logger.error("jet generation failed: %s", error)
        return 1

    logger.info("%s", summary.describe())
    return 0


def _add_neutrino_command(subparsers) -> None:
    parser = subparsers.add_parser(
        "neutrino",
        help="nu_mu CC, nu_e CC, NC and cosmic-muon events in a simplified NOvA-like detector",
        description=(
            "Simulate a balanced sample of neutrino interactions and cosmic muons in a detector of "
            "alternating XZ and YZ planes of scintillator cells, and write the hits as the TTree 'events' "
            "of a ROOT file. The physics model and its simplifications are described in jetnu.sim.neutrino."
        ),
    )
    parser.add_argument(
        "--n-events",
        type=_int_at_least(1),
        required=True,
        metavar="N",
        help="total number of events, split evenly over the classes",
    )
    parser.add_argument("--seed", type=_int_at_least(0), default=0, help="seed of the sample (default: %(default)s)")
    parser.add_argument("--out", required=True, metavar="FILE", help="output ROOT file, replaced if it exists")
    parser.add_argument(
        "--workers",
        type=_int_at_least(1),
        default=1,
        metavar="N",
        help="number of simulation processes; the sample does not depend on it (default: %(default)s)",
    )
    parser.add_argument(
        "--classes",
        nargs="+",
        choices=NEUTRINO_CLASS_NAMES,
        default=list(NEUTRINO_CLASS_NAMES),
        metavar="CLASS",
        help=f"event classes to simulate, from {', '.join(NEUTRINO_CLASS_NAMES)} (default: all)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    settings = parser.add_argument_group("detector and physics (defaults in brackets)")
    for name, value_type, default, text in neutrino_sim.config_fields():
        parse = _int_at_least(0) if value_type is int else _non_negative
        flag = "--" + name.replace("_", "-")
        settings.add_argument(
            flag,
            type=parse,
            default=default,
            dest=f"config_{name}",
            metavar="N" if value_type is int else "VALUE",
            help=f"{text} [%(default)s]",
        )
    parser.set_defaults(run=_run_neutrino, parser=parser)


def _run_neutrino(args: argparse.Namespace) -> int:
    values = {name: getattr(args, f"config_{name}") for name, *_ in neutrino_sim.config_fields()}
    try:
        config = neutrino_sim.DetectorConfig(**values)
    except ValueError as error:
        args.parser.error(str(error))

    try:
        summary = neutrino_sim.generate_neutrino_events(
            args.n_events,
            args.seed,
            args.out,
            workers=args.workers,
            config=config,
            classes=args.classes,
            progress=False if args.no_progress else None,
        )
    except KeyboardInterrupt:
        logger.error("interrupted, so %s was not written", args.out)
        return 130
    except (RuntimeError, OSError, ValueError) as error:
        logger.error("neutrino event simulation failed: %s", error)
        return 1

    logger.info("%s", summary.describe())
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Build the parser with one subcommand per sample kind."""
    parser = argparse.ArgumentParser(
        prog="python -m jetnu.generate", description="Generate training samples as ROOT files."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_jets_command(subparsers)
    _add_neutrino_command(subparsers)
    return parser


def _interrupt_on_sigterm(signum, frame):
    raise KeyboardInterrupt(f"received signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Run one generate subcommand and return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
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
