"""Transfer learning against training from scratch for neutrino event classification.

For each training-set size, two models of the same architecture are trained on the same
neutrino pixel maps and tested on the same held-out events: one starts from a top-tagging
checkpoint (``--freeze`` policy, default ``head`` as in the Brainwave study), one from
random weights. The per-class efficiency and purity, the accuracy and the confusion
matrices go into ``OUT/results.json`` and a Markdown page.

    python benchmarks/nu_transfer_study.py --n-events 6000 --sizes 500 1000 2000 \\
        --model resnet18 --epochs 4 --out benchmarks/results/nu_transfer

A top-tagging checkpoint is trained first on the default jet sample unless
``--top-checkpoint`` names one; its architecture must match ``--model``.
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

import numpy as np
import torch

from jetnu.data.spec import InputSpec
from jetnu.metrics import class_efficiency_purity, confusion_matrix
from jetnu.train import main as train_main

log = logging.getLogger("jetnu.study")

CONFIGS = Path(__file__).resolve().parents[1] / "jetnu" / "configs"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", default="data/nu_study.root", help="neutrino events file, generated if missing")
    parser.add_argument("--n-events", type=int, default=6000, help="events to generate when --events is missing")
    parser.add_argument("--workers", type=int, default=2, help="generator processes")
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 2000], help="training-set sizes, events")
    parser.add_argument("--model", default="resnet18", help="zoo model of both the top tagger and the neutrino models")
    parser.add_argument("--freeze", default="head", choices=["head", "last_stage", "full"], help="transfer freeze policy")
    parser.add_argument("--epochs", type=int, default=4, help="epochs of every neutrino training")
    parser.add_argument("--top-checkpoint", help="top-tagging checkpoint to start from (default: train one)")
    parser.add_argument("--top-data", default="data/top_default.root", help="jet sample for the top tagger")
    parser.add_argument("--top-epochs", type=int, default=4, help="epochs of the top-tagger training")
    parser.add_argument("--map-size", type=int, nargs=2, default=[100, 80], metavar=("PLANES", "CELLS"))
    parser.add_argument("--out", default="benchmarks/results/nu_transfer", help="output folder")
    args = parser.parse_args(argv)
    if min(args.sizes) < 1 or args.epochs < 1 or args.n_events < 10:
        parser.error("--sizes, --epochs must be positive and --n-events at least 10")
    return args


def ensure_events(args: argparse.Namespace) -> Path:
    path = Path(args.events)
    if not path.exists():
        from jetnu.sim.neutrino import generate_neutrino_events

        path.parent.mkdir(parents=True, exist_ok=True)
        summary = generate_neutrino_events(args.n_events, seed=1, out=path, workers=args.workers)
        log.info("generated %s", getattr(summary, "describe", lambda: path)())
    return path


def ensure_top_checkpoint(args: argparse.Namespace, out: Path) -> str:
    if args.top_checkpoint:
        return args.top_checkpoint
    summary = train_main(
        [
            "--config", str(CONFIGS / "top_resnet50.yaml"),
            "--model.model", args.model,
            "--data.path", args.top_data,
            "--trainer.max_epochs", str(args.top_epochs),
            "--trainer.default_root_dir", str(out / "top"),
            "--trainer.enable_progress_bar", "false",
        ]
    )  # fmt: skip
    log.info("top tagger: test AUC %.4f, checkpoint %s", summary["test_auc"], summary["checkpoint"])
    return summary["checkpoint"]


def train_neutrino(args, events: Path, size: int, mode: str, top_checkpoint: str, out: Path) -> dict:
    planes, cells = args.map_size
    argv = [
        "--config", str(CONFIGS / ("nu_resnet50_transfer.yaml" if mode == "transfer" else "nu_resnet50_scratch.yaml")),
        "--model.model", args.model,
        "--data.path", str(events),
        "--data.max_train", str(size),
        "--data.input_spec.height", str(planes),
        "--data.input_spec.width", str(cells),
        "--trainer.max_epochs", str(args.epochs),
        "--trainer.default_root_dir", str(out / f"{mode}_{size}"),
        "--trainer.enable_progress_bar", "false",
    ]  # fmt: skip
    if mode == "transfer":
        argv += ["--model.init_checkpoint", top_checkpoint, "--model.freeze", args.freeze]

    start = time.perf_counter()
    summary = train_main(argv)
    wall_time_s = time.perf_counter() - start

    checkpoint = Path(summary["checkpoint"])
    scores = np.load(checkpoint.parent.parent / "test_scores.npz")
    spec = InputSpec.from_dict(torch.load(checkpoint, weights_only=True)["input_spec"])
    labels = scores["labels"]
    predicted = scores["probabilities"].argmax(axis=1)
    confusion = confusion_matrix(labels, predicted, spec.num_classes)
    efficiency, purity = class_efficiency_purity(confusion)
    return {
        "size": size,
        "mode": mode,
        "accuracy": float(np.mean(labels == predicted)),
        "auc": summary["test_auc"],
        "efficiency": dict(zip(spec.class_names, efficiency.tolist())),
        "purity": dict(zip(spec.class_names, purity.tolist())),
        "confusion": confusion.tolist(),
        "class_names": list(spec.class_names),
        "n_test": int(labels.size),
        "wall_time_s": wall_time_s,
        "checkpoint": str(checkpoint),
    }


def write_page(path: Path, args, command: str, results: list[dict], top_checkpoint: str) -> None:
    class_names = results[0]["class_names"]
    lines = [
        "# Neutrino classification: transfer learning against training from scratch",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
        f"no GPU used. Model: {args.model}; transfer starts from `{top_checkpoint}` with freeze policy "
        f"`{args.freeze}`; {args.epochs} epochs per run; {results[0]['n_test']} test events, the same for every run.",
        "",
        "| training events | start | accuracy | macro AUC | "
        + " | ".join(f"eff {name}" for name in class_names)
        + " | "
        + " | ".join(f"pur {name}" for name in class_names)
        + " | wall time |",
        "|" + "---|" * (4 + 2 * len(class_names) + 1),
    ]
    for result in results:
        cells = [f"{result['efficiency'][name]:.3f}" for name in class_names]
        cells += [f"{result['purity'][name]:.3f}" for name in class_names]
        lines.append(
            f"| {result['size']} | {result['mode']} | {result['accuracy']:.3f} | {result['auc']:.3f} | "
            + " | ".join(cells)
            + f" | {result['wall_time_s']:.0f} s |"
        )
    lines += ["", "Confusion matrices (rows: true class, columns: predicted class, order " + ", ".join(class_names) + "):", ""]
    for result in results:
        lines.append(f"- {result['size']} events, {result['mode']}: `{result['confusion']}`")
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[jetnu] %(message)s")
    args = parse_args(argv)
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(sys.argv[1:] if argv is None else argv)])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    events = ensure_events(args)
    top_checkpoint = ensure_top_checkpoint(args, out)
    results = []
    for size in args.sizes:
        for mode in ("transfer", "scratch"):
            results.append(train_neutrino(args, events, size, mode, top_checkpoint, out))
            (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")

    write_page(out / "README.md", args, command, results, top_checkpoint)
    log.info("results written to %s", out / "README.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
