"""Train a tagger: ``python -m jetnu.train [--config FILE.yaml] [--section.key value ...]``.

A LightningCLI entry point. Without ``--config`` it runs the embedded default, the packaged
``configs/top_resnet50.yaml``, with any flags given applied on top: it generates a Pythia8
top/QCD sample under ``data/`` on first use, trains ResNet-50 on 40x40 jet images and
tests the best checkpoint. The same command runs under DDP unchanged
(``--trainer.strategy ddp --trainer.devices 2``).
"""

from __future__ import annotations

import json
import os
import logging
import math
import sys
import time
import warnings
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.utilities import rank_zero_only

from jetnu.cli import setup_command_logging
from jetnu.data.datamodule import ImageDataModule
from jetnu.data.errors import InputFileError
from jetnu.models.module import TaggerModule

log = logging.getLogger("jetnu.train")

DEFAULT_CONFIG = "top_resnet50.yaml"


def default_config_path() -> Path:
    return Path(str(resources.files("jetnu") / "configs" / DEFAULT_CONFIG))


class EpochSummary(Callback):
    """One line per epoch on rank 0: losses, validation metrics and the epoch's wall time."""

    def on_train_epoch_start(self, trainer, pl_module):
        self._start = time.perf_counter()

    # Validation runs at the end of each training epoch before this hook, so its metrics are fresh here.
    def on_train_epoch_end(self, trainer, pl_module):
        if not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics
        parts = [f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"]
        for name in ("train_loss_epoch", "val_loss", "val_acc", "val_auc", "val_rej30"):
            if name in metrics:
                parts.append(f"{name.removesuffix('_epoch')} {float(metrics[name]):.4g}")
        if hasattr(self, "_start"):
            parts.append(f"({time.perf_counter() - self._start:.0f} s)")
        log.info(" ".join(parts))


class JetnuCLI(LightningCLI):
    def add_arguments_to_parser(self, parser):
        parser.link_arguments("data.input_spec", "model.input_spec", apply_on="instantiate")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val_auc",
                "checkpoint.mode": "max",
                "checkpoint.filename": "best-epoch{epoch}-auc{val_auc:.4f}",
                "checkpoint.auto_insert_metric_name": False,
                "checkpoint.save_last": True,
            }
        )


def main(argv: list[str] | None = None) -> dict:
    """Run training and testing; return the summary (test metrics, wall time, checkpoint path)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    setup_command_logging()
    if not _has_config(argv):
        # Flags without --config override the embedded default run, not the bare code defaults.
        log.info("no --config given: starting from the embedded default %s", default_config_path())
        argv = ["--config", str(default_config_path()), *argv]

    start = time.perf_counter()
    with warnings.catch_warnings():
        # Scripts and notebooks call main(argv) with their own sys.argv; argv is what counts.
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
        cli = JetnuCLI(
            TaggerModule,
            ImageDataModule,
            args=argv,
            run=False,
            trainer_defaults={"callbacks": [EpochSummary()]},
            save_config_kwargs={"overwrite": True},
            parser_kwargs={"prog": "python -m jetnu.train"},
        )
    trainer = cli.trainer
    trainer.fit(cli.model, datamodule=cli.datamodule)

    checkpoint = trainer.checkpoint_callback
    best = checkpoint.best_model_path if checkpoint is not None else ""
    results = trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path=best or None, verbose=False)
    test_metrics = results[0] if results else {}

    summary = {
        "test_auc": test_metrics.get("test_auc", math.nan),
        "test_accuracy": test_metrics.get("test_acc", math.nan),
        "test_loss": test_metrics.get("test_loss", math.nan),
        "epochs": trainer.current_epoch,
        "wall_time_s": time.perf_counter() - start,
        "checkpoint": best,
        "data": cli.datamodule.path,
        "model": cli.model.hparams.model,
    }
    # trainer.log_dir is a collective call under DDP, so every rank reads it.
    if cli.model.input_spec.num_classes == 2:
        summary["test_rejection_at_eff_0.3"] = test_metrics.get("test_rej30", math.nan)
    _report(Path(trainer.log_dir or trainer.default_root_dir), cli.model, summary)

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return summary


@rank_zero_only
def _report(log_dir: Path, model: TaggerModule, summary: dict) -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    # Strict JSON: an undefined (NaN) or infinite metric is written as null.
    finite = {key: _json_value(value) for key, value in summary.items()}
    (log_dir / "summary.json").write_text(json.dumps(finite, indent=2, allow_nan=False) + "\n")
    if model.test_probabilities is not None:
        # Per-jet test scores of the tested checkpoint, in the DataModule's test-split order.
        np.savez(log_dir / "test_scores.npz", probabilities=model.test_probabilities, labels=model.test_labels)
    rejection = ""
    if "test_rejection_at_eff_0.3" in summary:
        rejection = f", 1/eps_B at eps_S=0.3 {summary['test_rejection_at_eff_0.3']:.1f}"
    auc_name = "AUC" if model.input_spec.num_classes == 2 else "macro AUC"
    log.info(
        "done: test %s %.4f%s, accuracy %.4f, wall time %.0f s, checkpoint %s",
        auc_name,
        summary["test_auc"],
        rejection,
        summary["test_accuracy"],
        summary["wall_time_s"],
        summary["checkpoint"] or "(none saved)",
    )


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _has_config(argv: list[str]) -> bool:
    return any(arg in ("--config", "-c") or arg.startswith("--config=") for arg in argv)


def run(argv: list[str] | None = None) -> int:
    """Command-line entry: run `main` and turn input errors into one message and exit status 1."""
    try:
        main(argv)
    except (InputFileError, FileNotFoundError, ValueError, OSError) as error:
        setup_command_logging()
        if os.environ.get("JETNU_DEBUG"):
            raise
        log.error("error: %s\n(set JETNU_DEBUG=1 to see the traceback)", error)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(run())
