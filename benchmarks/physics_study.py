"""Top tagging on one large generated sample: ResNet-50, ResNet-18 and the substructure BDT.

Generates the sample once (never commit it), trains both networks with the same config
and split, evaluates them on the held-out test jets together with the BDT, and writes the
results page ``benchmarks/physics.md``:

    python benchmarks/physics_study.py --n-jets 100000 --epochs 3

The public reference dataset (ResNeXt-50 on images: AUC about 0.984, 1/eps_B about 1100
at eps_S = 0.3) is detector level; these truth-level jets are easier to tag.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

from jetnu.evaluate import main as evaluate_main
from jetnu.train import main as train_main

log = logging.getLogger("jetnu.study")

CONFIG = Path(__file__).resolve().parents[1] / "jetnu" / "configs" / "top_resnet50.yaml"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="data/physics_100k.root", help="jet sample, generated if missing")
    parser.add_argument("--n-jets", type=int, default=100_000, help="jets to generate (half top, half QCD)")
    parser.add_argument("--workers", type=int, default=2, help="generator processes")
    parser.add_argument("--detector", default="none", choices=["none", "towers"], help="generation detector model")
    parser.add_argument("--models", nargs="+", default=["resnet50", "resnet18"], help="zoo models to train")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per model")
    parser.add_argument("--bootstrap", type=int, default=100, help="bootstrap resamples of the uncertainties")
    parser.add_argument("--out", default="benchmarks/results/physics", help="folder for runs and evaluation")
    parser.add_argument("--page", default="benchmarks/physics.md", help="results page to write")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[jetnu] %(message)s")
    args = parse_args(argv)
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(sys.argv[1:] if argv is None else argv)])
    out = Path(args.out)
    data = Path(args.data)

    timings = {}
    if not data.exists():
        from jetnu.sim.pythia_jets import JetGenConfig, generate_jets

        data.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        summary = generate_jets(args.n_jets, 1, data, workers=args.workers, config=JetGenConfig(detector=args.detector))
        timings["generation"] = time.perf_counter() - start
        log.info(summary.describe())

    checkpoints = []
    for model in args.models:
        start = time.perf_counter()
        summary = train_main(
            [
                "--config", str(CONFIG),
                "--model.model", model,
                "--data.path", str(data),
                "--trainer.max_epochs", str(args.epochs),
                "--trainer.default_root_dir", str(out / model),
                "--trainer.enable_progress_bar", "false",
            ]
        )  # fmt: skip
        timings[model] = time.perf_counter() - start
        checkpoints.append(summary["checkpoint"])

    evaluation = out / "evaluation"
    status = evaluate_main(
        [*checkpoints, "--names", *args.models, "--data", str(data), "--out", str(evaluation),
         "--baseline", "bdt", "--bootstrap", str(args.bootstrap)]
    )  # fmt: skip
    if status != 0:
        return status

    metrics = json.loads((evaluation / "metrics.json").read_text())
    write_page(Path(args.page), command, metrics, timings, args)
    log.info("results page written to %s", args.page)
    return 0


def _cell(entry: dict) -> str:
    if entry.get("value") is None:
        return f"> {entry['lower_bound']}" if "lower_bound" in entry else "n/a"
    if entry.get("uncertainty") is None:
        return f"{entry['value']:.4g} (no finite spread)"
    return f"{entry['value']:.4g} ± {entry['uncertainty']:.2g}"


def write_page(path: Path, command: str, metrics: dict, timings: dict, args) -> None:
    rows = {**metrics["models"], **{f"BDT ({name})": entry for name, entry in metrics.get("baselines", {}).items()}}
    lines = [
        "# Top tagging on generated jets",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
        f"GPU: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}. "
        f"Sample: `{args.data}`, {metrics['n_entries']} test jets of the split; detector model `{args.detector}`; "
        f"{args.epochs} epochs per network; uncertainties are the spread of {args.bootstrap} bootstrap resamples "
        "of the test jets.",
        "",
        "| tagger | AUC | accuracy | 1/eps_B at eps_S = 0.3 | 1/eps_B at eps_S = 0.5 |",
        "|---|---|---|---|---|",
    ]
    for name, entry in rows.items():
        lines.append(
            f"| {name} | {_cell(entry['auc'])} | {_cell(entry['accuracy'])} | "
            f"{_cell(entry['rejection_at_eff_0.3'])} | {_cell(entry['rejection_at_eff_0.5'])} |"
        )
    lines += ["", "Wall times: " + ", ".join(f"{name} {seconds / 60:.1f} min" for name, seconds in timings.items()) + "."]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
