"""`python -m jetnu.train` end to end on a small real Pythia8 sample with the tiny config."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from jetnu.data.datamodule import ImageDataModule
from jetnu.data.spec import InputSpec
from jetnu.models.module import load_tagger
from jetnu.train import main as train_main

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO / "configs" / "top_tiny.yaml"


@pytest.fixture(scope="module")
def jet_file(tmp_path_factory):
    from jetnu.sim.pythia_jets import generate_jets

    path = tmp_path_factory.mktemp("sample") / "jets.root"
    generate_jets(300, seed=7, out=path, workers=1, progress=False)
    return path


def _tiny_args(jet_file, root_dir, *extra):
    return [
        "--config", str(TINY_CONFIG),
        "--data.path", str(jet_file),
        "--trainer.max_epochs", "1",
        "--trainer.default_root_dir", str(root_dir),
        "--trainer.enable_progress_bar", "false",
        *extra,
    ]  # fmt: skip


def test_tiny_config_checkpoint_reloads_same_scores(jet_file, tmp_path):
    summary = train_main(_tiny_args(jet_file, tmp_path / "out"))

    checkpoint_path = Path(summary["checkpoint"])
    assert checkpoint_path.is_file()
    assert 0.0 <= summary["test_auc"] <= 1.0

    checkpoint = torch.load(checkpoint_path, weights_only=True)
    spec = InputSpec.from_dict(checkpoint["input_spec"])
    assert (spec.height, spec.width) == (32, 32)

    # Scores recorded by the training process for its test split ...
    log_dir = checkpoint_path.parent.parent
    recorded = np.load(log_dir / "test_scores.npz")
    assert json.loads((log_dir / "summary.json").read_text())["checkpoint"] == str(checkpoint_path)

    # ... equal those of the checkpoint reloaded in this process on the same split.
    model = load_tagger(checkpoint_path)
    data = ImageDataModule(path=str(jet_file), input_spec=spec, val_fraction=0.2, test_fraction=0.2, split_seed=42)
    data.setup("test")
    images, labels = data.datasets["test"].tensors
    scores = model.predict_scores(images).numpy()

    np.testing.assert_array_equal(labels.numpy(), recorded["labels"])
    np.testing.assert_allclose(scores, recorded["probabilities"], rtol=1e-5, atol=1e-6)


def test_missing_data_file_names_generate_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m jetnu.generate jets"):
        train_main(_tiny_args(tmp_path / "absent.root", tmp_path / "out"))


def test_ddp_two_cpu_processes(jet_file, tmp_path):
    """The same entry point trains under DDP with two CPU processes."""
    root_dir = tmp_path / "ddp"
    args = _tiny_args(jet_file, root_dir, "--trainer.strategy", "ddp", "--trainer.devices", "2")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "jetnu.train", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "done: test AUC" in result.stderr
    checkpoints = list(root_dir.rglob("best-*.ckpt"))
    assert len(checkpoints) == 1
    assert "input_spec" in torch.load(checkpoints[0], weights_only=True)

    # Test scores gathered from both ranks come back in the split's order, without padding.
    recorded = np.load(checkpoints[0].parent.parent / "test_scores.npz")
    data = ImageDataModule(path=str(jet_file), val_fraction=0.2, test_fraction=0.2, split_seed=42)
    data.setup("test")
    np.testing.assert_array_equal(recorded["labels"], data.datasets["test"].tensors[1].numpy())


@pytest.mark.slow
def test_default_resnet50_config_learns(tmp_path):
    """The embedded default config (ResNet-50, 40x40 images) separates top from QCD on a small sample."""
    summary = train_main(
        [
            "--config", str(REPO / "configs" / "top_resnet50.yaml"),
            "--data.path", str(tmp_path / "jets.root"),
            "--data.generate_n_jets", "3000",
            "--trainer.max_epochs", "2",
            "--trainer.default_root_dir", str(tmp_path / "out"),
            "--trainer.enable_progress_bar", "false",
        ]
    )  # fmt: skip
    assert summary["model"] == "resnet50"
    assert summary["test_auc"] > 0.85


def test_max_train_keeps_validation_and_test(jet_file):
    full = ImageDataModule(path=str(jet_file), val_fraction=0.2, test_fraction=0.2)
    limited = ImageDataModule(path=str(jet_file), val_fraction=0.2, test_fraction=0.2, max_train=50)
    full.setup()
    limited.setup()

    assert len(limited.datasets["train"]) == 50
    assert len(full.datasets["train"]) == 180
    for split in ("val", "test"):
        torch.testing.assert_close(limited.datasets[split].tensors[0], full.datasets[split].tensors[0])


def test_run_reports_input_error_as_status(tmp_path):
    """Input errors end the command with status 1 and one message, not a traceback through Lightning."""
    from jetnu.train import run

    assert run(_tiny_args(tmp_path / "absent.root", tmp_path / "out")) == 1


def test_flags_without_config_start_from_default(tmp_path, monkeypatch):
    """A flag alone overrides the embedded default run instead of dropping it."""
    from jetnu import train

    seen = {}

    class StopAfterParsing(Exception):
        pass

    def fake_cli(*args, **kwargs):
        seen["args"] = kwargs["args"]
        raise StopAfterParsing

    monkeypatch.setattr(train, "JetnuCLI", fake_cli)
    with pytest.raises(StopAfterParsing):
        train.main(["--trainer.max_epochs", "2"])
    assert seen["args"] == ["--config", str(train.default_config_path()), "--trainer.max_epochs", "2"]

    with pytest.raises(StopAfterParsing):
        train.main(["--config", "mine.yaml"])
    assert seen["args"] == ["--config", "mine.yaml"]


def test_single_class_training_split_rejected(tmp_path):
    from conftest import jets_to_tree_columns, make_jets, write_tree

    jets = make_jets(20, seed=1)
    jets["label"] = np.zeros(20, dtype=np.int32)
    path = write_tree(tmp_path / "qcd_only.root", jets_to_tree_columns(jets))

    data = ImageDataModule(path=str(path), val_fraction=0.2, test_fraction=0.2)
    with pytest.raises(ValueError, match="contains only class 'qcd'"):
        data.setup()


def test_lone_last_training_batch_dropped(jet_file):
    """A training split of 33 with batch size 32 once crashed BatchNorm on a batch of one."""
    data = ImageDataModule(path=str(jet_file), batch_size=32, max_jets=55, val_fraction=0.2, test_fraction=0.2)
    data.setup()

    assert len(data.datasets["train"]) == 33
    assert [len(labels) for _, labels in data.train_dataloader()] == [32]


def test_unbounded_run_rejected_by_schedule(jet_file, tmp_path):
    with pytest.raises(ValueError, match="needs a finite run"):
        train_main(_tiny_args(jet_file, tmp_path / "out", "--trainer.max_epochs", "-1"))
