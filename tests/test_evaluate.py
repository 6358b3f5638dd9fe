"""`python -m jetnu.evaluate` end to end: a tiny trained checkpoint on a small real Pythia8 sample."""

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from jetnu.data.cache import load_or_build_images
from jetnu.data.datamodule import ImageDataModule
from jetnu.data.spec import InputSpec
from jetnu.evaluate import main as evaluate_main
from jetnu.models.module import TaggerModule, read_input_spec
from jetnu.train import main as train_main

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO / "configs" / "top_tiny.yaml"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _strict_json(path: Path) -> dict:
    """Load JSON, failing on the NaN and Infinity tokens that Python's json writes by default."""

    def reject(token):
        raise AssertionError(f"{path} contains the non-standard JSON token {token}")

    return json.loads(path.read_text(), parse_constant=reject)


@pytest.fixture(scope="module", autouse=True)
def one_openmp_thread():
    """Limit OpenMP to one thread.

    On a busy 2-core machine, waiting OpenMP threads made one evaluation with a 200-jet BDT
    take 17 to 26 s instead of under 1 s.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        yield


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 300-jet Pythia8 sample and a tiny ResNet trained on it for one epoch."""
    from jetnu.sim.pythia_jets import generate_jets

    folder = tmp_path_factory.mktemp("evaluate")
    data = folder / "jets.root"
    generate_jets(300, seed=7, out=data, workers=1, progress=False)
    summary = train_main(
        [
            "--config", str(TINY_CONFIG),
            "--data.path", str(data),
            "--trainer.max_epochs", "1",
            "--trainer.default_root_dir", str(folder / "run"),
            "--trainer.enable_progress_bar", "false",
        ]
    )  # fmt: skip
    checkpoint = Path(summary["checkpoint"])
    return SimpleNamespace(folder=folder, data=data, checkpoint=checkpoint, summary=summary, log_dir=checkpoint.parent.parent)


@pytest.fixture(scope="module")
def evaluation(trained):
    """The evaluation of the trained checkpoint on its test split, with the BDT baseline."""
    out = trained.folder / "evaluation"
    args = [str(trained.checkpoint), "--data", str(trained.data), "--out", str(out), "--baseline", "bdt", "--bootstrap", "20"]
    assert evaluate_main(args) == 0
    return out


def _evaluate(trained, out: Path, *extra: str) -> int:
    return evaluate_main([str(trained.checkpoint), "--data", str(trained.data), "--out", str(out), "--bootstrap", "5", *extra])


def test_metrics_json_layout_and_ranges(trained, evaluation):
    metrics = _strict_json(evaluation / "metrics.json")
    name = trained.checkpoint.stem

    assert metrics["split"] == "test"
    assert metrics["split_parameters"] == {"val_fraction": 0.2, "test_fraction": 0.2, "split_seed": 42, "max_jets": None}
    assert metrics["n_entries"] == 60
    assert sum(metrics["class_counts"].values()) == 60
    assert set(metrics["models"]) == {name}
    assert set(metrics["baselines"]) == {"bdt"}

    model = metrics["models"][name]
    assert model["kind"] == "binary"
    assert model["split_source"] == str(trained.log_dir / "config.yaml")
    for key in ("auc", "accuracy", "rejection_at_eff_0.3", "rejection_at_eff_0.5"):
        assert set(model[key]) >= {"value", "uncertainty"}
    assert 0.0 <= model["auc"]["value"] <= 1.0
    assert 0.0 <= model["accuracy"]["value"] <= 1.0
    assert model["auc"]["uncertainty"] > 0.0
    for key in ("rejection_at_eff_0.3", "rejection_at_eff_0.5"):
        rejection = model[key]
        if rejection["value"] is None:
            assert rejection["lower_bound"] == metrics["class_counts"]["qcd"]
            assert "no background entry passes" in rejection["note"]
        else:
            assert rejection["value"] >= 1.0
        assert 0 <= rejection["infinite_resamples"] <= 20


def test_model_auc_equals_training_test_auc(trained, evaluation):
    metrics = _strict_json(evaluation / "metrics.json")
    auc = metrics["models"][trained.checkpoint.stem]["auc"]["value"]
    assert auc == pytest.approx(trained.summary["test_auc"], abs=1e-6)


def test_roc_png_written(evaluation):
    data = (evaluation / "roc.png").read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 10_000


def test_scores_are_the_datamodule_test_split(trained, evaluation):
    scores = np.load(evaluation / "scores.npz")
    name = trained.checkpoint.stem
    assert list(scores["model_names"]) == [name]
    assert scores["entry"].shape == (60,)
    assert scores["labels"].shape == (60,)
    assert scores[f"probabilities_{name}"].shape == (60, 2)
    assert scores["baseline_bdt"].shape == (60,)

    spec = read_input_spec(trained.checkpoint)
    data = ImageDataModule(path=str(trained.data), input_spec=spec, val_fraction=0.2, test_fraction=0.2, split_seed=42)
    data.setup("test")
    test_images, test_labels = data.datasets["test"].tensors
    all_images, _ = load_or_build_images(trained.data, spec)
    np.testing.assert_array_equal(scores["labels"], test_labels.numpy())
    np.testing.assert_array_equal(all_images[scores["entry"]], test_images.numpy())

    # The training process recorded its test scores in the same order.
    recorded = np.load(trained.log_dir / "test_scores.npz")
    np.testing.assert_allclose(scores[f"probabilities_{name}"], recorded["probabilities"], rtol=1e-5, atol=1e-6)


def test_bdt_separates_top_from_qcd(evaluation):
    bdt = _strict_json(evaluation / "metrics.json")["baselines"]["bdt"]
    assert bdt["auc"]["value"] > 0.7
    assert bdt["training_data"] == "train and validation entries of --data"


def test_split_from_flags_without_run_config(trained, evaluation, tmp_path):
    """A checkpoint moved away from its run folder takes the split from flags, or the DataModule defaults."""
    moved = tmp_path / "moved.ckpt"
    shutil.copy(trained.checkpoint, moved)
    reference = np.load(evaluation / "scores.npz")["entry"]

    flags = ["--split-seed", "42", "--val-fraction", "0.2", "--test-fraction", "0.2"]
    assert evaluate_main([str(moved), "--data", str(trained.data), "--out", str(tmp_path / "flags"), *flags]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "flags" / "scores.npz")["entry"], reference)
    assert _strict_json(tmp_path / "flags" / "metrics.json")["models"]["moved"]["split_source"] == "command line"

    # ImageDataModule's defaults hold out 15% for the test: 45 of 300 jets.
    assert evaluate_main([str(moved), "--data", str(trained.data), "--out", str(tmp_path / "defaults")]) == 0
    assert _strict_json(tmp_path / "defaults" / "metrics.json")["n_entries"] == 45


def test_flag_contradicting_stored_split_rejected(trained, tmp_path, capsys):
    assert _evaluate(trained, tmp_path / "out", "--split-seed", "7") == 2
    assert "--split-seed 7 contradicts split_seed=42" in capsys.readouterr().err
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_split_all_uses_every_entry(trained, tmp_path):
    out = tmp_path / "all"
    assert _evaluate(trained, out, "--split", "all", "--bootstrap", "0") == 0
    metrics = _strict_json(out / "metrics.json")
    assert metrics["n_entries"] == 300
    assert metrics["split_parameters"] is None
    # Without resamples there is no spread, written as null.
    assert metrics["models"][trained.checkpoint.stem]["auc"]["uncertainty"] is None
    np.testing.assert_array_equal(np.load(out / "scores.npz")["entry"], np.arange(300))


def test_baseline_with_split_all_needs_training_file(trained, tmp_path, capsys):
    assert _evaluate(trained, tmp_path / "out", "--split", "all", "--baseline", "bdt") == 2
    assert "needs --baseline-data" in capsys.readouterr().err


def test_baseline_trained_on_other_file(trained, tmp_path, write_jet_file):
    training_file = write_jet_file("bdt_train.root", num_jets=200, seed=3)
    out = tmp_path / "out"
    args = ["--split", "all", "--baseline", "bdt", "--baseline-data", str(training_file)]
    assert _evaluate(trained, out, *args) == 0

    assert _strict_json(out / "metrics.json")["baselines"]["bdt"]["training_data"] == str(training_file)
    assert np.load(out / "scores.npz")["baseline_bdt"].shape == (300,)


def test_two_models_share_plot_and_scores(trained, tmp_path):
    out = tmp_path / "two"
    last = trained.checkpoint.parent / "last.ckpt"
    args = [str(trained.checkpoint), str(last), "--data", str(trained.data), "--out", str(out), "--names", "best", "last"]
    assert evaluate_main([*args, "--bootstrap", "5"]) == 0

    metrics = _strict_json(out / "metrics.json")
    assert set(metrics["models"]) == {"best", "last"}
    scores = np.load(out / "scores.npz")
    assert scores["probabilities_best"].shape == scores["probabilities_last"].shape == (60, 2)


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda t, tmp: [str(tmp / "absent.ckpt"), "--data", str(t.data)], "absent.ckpt' not found"),
        (lambda t, tmp: [str(t.checkpoint), "--data", str(tmp / "absent.root")], "data file"),
        (lambda t, tmp: [str(t.checkpoint), str(t.checkpoint), "--data", str(t.data)], "occur more than once"),
        (lambda t, tmp: [str(t.checkpoint), "--data", str(t.data), "--names", "a", "b"], "2 names for 1 checkpoints"),
        (lambda t, tmp: [str(t.checkpoint), "--data", str(t.data), "--nue-purity", "1.5"], "--nue-purity"),
    ],
    ids=["missing-checkpoint", "missing-data", "duplicate-names", "name-count", "purity-range"],
)
def test_invalid_arguments_exit_2(trained, tmp_path, capsys, make_args, message):
    assert evaluate_main([*make_args(trained, tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err


def test_foreign_checkpoint_rejected(trained, tmp_path, capsys):
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {"weight": torch.zeros(2)}}, foreign)
    assert evaluate_main([str(foreign), "--data", str(trained.data), "--out", str(tmp_path / "out")]) == 2
    assert "is not a jetnu checkpoint" in capsys.readouterr().err


@pytest.fixture
def neutrino_checkpoint(tmp_path):
    """An untrained four-class tiny ResNet on the default pixel maps, saved in jetnu's checkpoint layout."""
    spec = InputSpec.pixel_map()
    torch.manual_seed(0)
    module = TaggerModule(model="resnet_tiny", input_spec=spec)
    path = tmp_path / "nu_tiny.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams), "input_spec": spec.to_dict()}, path)
    return path


def test_multiclass_metrics_and_plots(neutrino_checkpoint, event_file, tmp_path):
    out = tmp_path / "nu"
    args = [str(neutrino_checkpoint), "--data", str(event_file), "--out", str(out), "--split", "all", "--bootstrap", "10"]
    assert evaluate_main(args) == 0

    metrics = _strict_json(out / "metrics.json")
    model = metrics["models"]["nu_tiny"]
    class_names = ["numu_cc", "nue_cc", "nc", "cosmic"]
    assert model["kind"] == "multiclass"
    assert metrics["class_names"] == class_names
    assert set(model["efficiency"]) == set(model["purity"]) == set(class_names)
    assert model["efficiency_at_purity"]["class"] == "nue_cc"
    assert model["efficiency_at_purity"]["purity"] == 0.8
    assert 0.0 <= model["efficiency_at_purity"]["value"] <= 1.0

    # The confusion matrix in the JSON is the one of the saved probabilities.
    scores = np.load(out / "scores.npz")
    probabilities = scores["probabilities_nu_tiny"]
    assert probabilities.shape == (60, 4)
    counts = np.zeros((4, 4), dtype=int)
    np.add.at(counts, (scores["labels"], probabilities.argmax(axis=1)), 1)
    np.testing.assert_array_equal(model["confusion_matrix"]["counts"], counts)
    rows = np.array(model["confusion_matrix"]["row_normalised"], dtype=float)
    np.testing.assert_allclose(rows.sum(axis=1), 1.0)
    assert model["accuracy"]["value"] == pytest.approx(np.trace(counts) / 60)

    assert (out / "confusion_nu_tiny.png").read_bytes().startswith(PNG_SIGNATURE)
    assert (out / "roc.png").read_bytes().startswith(PNG_SIGNATURE)


def test_multiclass_baseline_rejected(neutrino_checkpoint, event_file, write_jet_file, tmp_path, capsys):
    training_file = write_jet_file("bdt_train.root", num_jets=50)
    args = [str(neutrino_checkpoint), "--data", str(event_file), "--out", str(tmp_path / "out"), "--split", "all"]
    assert evaluate_main([*args, "--baseline", "bdt", "--baseline-data", str(training_file)]) == 2
    assert "separates two jet classes" in capsys.readouterr().err


def test_read_epoch_metrics_merges_step_and_epoch_rows(tmp_path):
    from jetnu.plotting import read_epoch_metrics

    path = tmp_path / "metrics.csv"
    path.write_text(
        "epoch,step,train_loss_step,val_loss,val_auc\n"
        "0,9,0.7,,\n"
        "0,9,,0.6,0.8\n"
        "1,19,0.5,,\n"
        "1,19,,0.4,0.9\n"
    )
    table = read_epoch_metrics(path)

    np.testing.assert_array_equal(table["val_loss"], [0.6, 0.4])
    np.testing.assert_array_equal(table["val_auc"], [0.8, 0.9])
    np.testing.assert_array_equal(table["train_loss_step"], [0.7, 0.5])
