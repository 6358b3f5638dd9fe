"""Evaluate trained taggers: ``python -m jetnu.evaluate CKPT [CKPT ...] --data FILE --out DIR``.

Each checkpoint builds its own inputs from the input spec stored in it, so models with
different image sizes or preprocessing can be compared on one file. With ``--split
test`` (the default) only the test entries of the training split are evaluated: the
split of `jetnu.data.datamodule.ImageDataModule` is drawn again from the same file,
fractions and seed. Those are read, in this order, from the checkpoint's
``datamodule_hyper_parameters``, from the ``config.yaml`` that ``python -m jetnu.train``
writes into the run folder (the parent of the ``checkpoints`` folder), or from
``--split-seed``, ``--val-fraction``, ``--test-fraction`` and ``--max-jets`` (default: the
DataModule's defaults). A flag that contradicts a stored value is an error, because the
test entries could then include training entries. ``--split all`` evaluates every entry,
for a separate test file.

Outputs in ``--out``:

``metrics.json``
    The evaluated sample (``data``, ``tree``, ``split``, ``split_parameters``,
    ``n_entries``, ``class_names``, ``class_counts``), the ``bootstrap`` settings and the
    written ``outputs``. ``models`` (and ``baselines`` with ``--baseline bdt``) map a name
    to its metrics.
    Binary models: ``auc``, ``accuracy``, ``rejection_at_eff_0.3`` and
    ``rejection_at_eff_0.5``. Multiclass models: ``accuracy``, ``auc`` (macro one-vs-rest),
    ``efficiency`` and ``purity`` per class, ``efficiency_at_purity`` of the nu_e class,
    and ``confusion_matrix`` (``counts`` and ``row_normalised``, true class in rows). Each
    metric is ``{"value": x, "uncertainty": s}``, where ``s`` is the standard deviation over
    ``--bootstrap`` resamples of the evaluated entries. JSON has no NaN or Infinity, so an
    undefined number is ``null``. An infinite rejection (no background entry passes the
    cut) is ``"value": null, "uncertainty": null`` with a ``note`` and a ``lower_bound``: the
    number of background entries, which 1/eps_B then exceeds. Rejection entries also count
    their ``infinite_resamples``, which are left out of the uncertainty.
``scores.npz``
    ``entry`` (tree entry numbers), ``labels``, ``model_names``, ``probabilities_<name>``
    (entries, classes) per model, and ``baseline_bdt`` (signal score) with the baseline.
``roc.png``
    1/eps_B against eps_S of every model and the baseline (binary), or of the nu_e class
    against all others (multiclass).
``confusion_<name>.png``
    Row-normalised confusion matrix of each multiclass model.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

from jetnu.cli import setup_command_logging
from jetnu.data.datamodule import split_entries
from jetnu.data.errors import InputFileError
from jetnu.data.spec import InputSpec
from jetnu.metrics import binary_summary, multiclass_summary

log = logging.getLogger("jetnu.evaluate")

BASELINES = ("bdt",)
NUE_CLASS = "nue_cc"
SPLIT_KEYS = ("val_fraction", "test_fraction", "split_seed", "max_jets")


@dataclass(frozen=True)
class SplitParameters:
    """The ImageDataModule arguments that fix its train/validation/test split."""

    val_fraction: float
    test_fraction: float
    split_seed: int
    max_jets: int | None  # only the first max_jets entries are split; None: all


@dataclass
class LoadedModel:
    """A checkpoint's module and input spec with the split it was trained on."""

    name: str
    checkpoint: Path
    module: torch.nn.Module
    spec: InputSpec
    split: SplitParameters | None  # None with --split all
    split_source: str  # where the split parameters came from
    trained_on: str | None  # the data path stored with the split parameters, if any


def split_test_entries(n_entries: int, split: SplitParameters) -> np.ndarray:
    """Sorted entry numbers of the test set, drawn as `ImageDataModule` draws it."""
    try:
        bounds = split_entries(n_entries, split.val_fraction, split.test_fraction, split.split_seed)
    except ValueError as err:
        raise ValueError(f"{err}, or evaluate with --split all") from None
    return np.sort(bounds["test"])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m jetnu.evaluate",
        description="Evaluate jetnu checkpoints on a ROOT file: metrics.json, scores.npz and ROC/confusion plots.",
    )
    parser.add_argument("checkpoints", nargs="+", type=Path, metavar="CKPT", help="jetnu Lightning checkpoint(s)")
    parser.add_argument("--data", required=True, type=Path, help="ROOT file with the jets or events tree")
    parser.add_argument("--out", required=True, type=Path, help="output folder (created if missing)")
    parser.add_argument("--names", nargs="+", help="one name per checkpoint (default: the checkpoint file stems)")

    parser.add_argument("--baseline", choices=BASELINES, help="also train and evaluate a baseline (bdt: substructure BDT)")
    parser.add_argument(
        "--baseline-data",
        type=Path,
        help="train the baseline on every entry of this jet file instead of the non-test entries of --data; "
        "required with --split all",
    )

    parser.add_argument(
        "--split",
        choices=("test", "all"),
        default="test",
        help="test: the test entries of the training split (default); all: every entry, for a separate file",
    )
    parser.add_argument("--split-seed", type=int, help="split seed when the checkpoint stores none")
    parser.add_argument("--val-fraction", type=float, help="validation fraction when the checkpoint stores none")
    parser.add_argument("--test-fraction", type=float, help="test fraction when the checkpoint stores none")
    parser.add_argument("--max-jets", type=int, help="use only the first N entries, as --data.max_jets in training")

    parser.add_argument("--bootstrap", type=int, default=100, help="bootstrap resamples for the uncertainties (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resampling (default 0)")
    parser.add_argument(
        "--nue-purity",
        type=float,
        default=0.8,
        help=f"purity at which the {NUE_CLASS} efficiency of multiclass models is quoted (default 0.8)",
    )

    parser.add_argument("--batch-size", type=int, default=256, help="entries per inference batch (default 256)")
    parser.add_argument("--device", default="auto", help="torch device for inference: auto (CUDA when present), cpu, cuda:0, ...")
    parser.add_argument("--cache-dir", type=Path, help="image cache folder (default: .jetnu_cache beside --data)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the evaluation; return 0 on success and 2 for invalid arguments or input files."""
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_command_logging()
    try:
        report = evaluate(args)
    except (FileNotFoundError, InputFileError, ValueError) as error:
        log.debug("evaluation failed", exc_info=True)
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    log.info("wrote %s", ", ".join(sorted(report["outputs"])))
    return 0


def evaluate(args: argparse.Namespace) -> dict:
    """Evaluate the checkpoints named in ``args`` and write the outputs; return the metrics.json content."""
    from jetnu.data.cache import load_or_build_images

    _check_arguments(args)
    data = args.data.expanduser().resolve()
    names = _model_names(args.checkpoints, args.names)
    models = [_load_model(path, name, args) for path, name in zip(args.checkpoints, names)]
    class_names = _common_class_names(models)
    if args.baseline == "bdt":
        _check_baseline_inputs(models[0].spec)
    split = _common_split(models, data) if args.split == "test" else None
    max_jets = split.max_jets if split is not None else args.max_jets
    entry_stop = _entry_stop(data, models[0].spec, max_jets)
    device = _device(args.device)

    evaluated = all_labels = None
    probabilities: dict[str, np.ndarray] = {}
    for model in models:
        images, labels = load_or_build_images(
            data, model.spec, tree=model.spec.tree, cache_dir=args.cache_dir, entry_stop=entry_stop
        )
        if all_labels is None:
            all_labels = labels
            evaluated = np.arange(len(labels)) if split is None else split_test_entries(len(labels), split)
            log.info("evaluating %d of %d entries of %s (--split %s)", len(evaluated), len(labels), data, args.split)
        elif not np.array_equal(labels, all_labels):
            raise ValueError(
                f"model {model.name!r} reads other labels from {str(data)!r} than model {models[0].name!r}; "
                f"their input specs name the trees {model.spec.tree!r} and {models[0].spec.tree!r}"
            )

        start = time.perf_counter()
        probabilities[model.name] = _predict(model, images[evaluated], args.batch_size, device)
        log.info("model %s: %d entries in %.1f s", model.name, len(evaluated), time.perf_counter() - start)
        del images

    labels = all_labels[evaluated]
    baseline_scores = None
    if args.baseline == "bdt":
        baseline_scores = _bdt_scores(args, data, models[0].spec, entry_stop, evaluated, labels)

    report = _report(args, data, models, class_names, split, labels, probabilities, baseline_scores)
    _write_outputs(args.out, report, evaluated, labels, class_names, probabilities, baseline_scores)
    return report


def _check_arguments(args: argparse.Namespace) -> None:
    if not args.data.expanduser().is_file():
        raise FileNotFoundError(f"data file {str(args.data)!r} not found; pass --data FILE.root")
    for name in ("bootstrap", "batch_size"):
        value = getattr(args, name)
        minimum = 0 if name == "bootstrap" else 1
        if value < minimum:
            raise ValueError(f"--{name.replace('_', '-')} must be at least {minimum}, got {value}")
    if not 0.0 < args.nue_purity <= 1.0:
        raise ValueError(f"--nue-purity must be in (0, 1], got {args.nue_purity}")
    if args.baseline_data is not None and args.baseline is None:
        raise ValueError("--baseline-data is only used with --baseline bdt")
    if args.baseline is not None and args.split == "all" and args.baseline_data is None:
        raise ValueError(
            "--baseline bdt with --split all needs --baseline-data TRAIN.root: with --split all no entries of "
            "--data are set aside for training the baseline"
        )
    if args.baseline_data is not None and not args.baseline_data.expanduser().is_file():
        raise FileNotFoundError(f"baseline training file {str(args.baseline_data)!r} not found")


def _model_names(checkpoints: list[Path], names: list[str] | None) -> list[str]:
    if names is None:
        names = [path.stem for path in checkpoints]
    elif len(names) != len(checkpoints):
        raise ValueError(f"--names has {len(names)} names for {len(checkpoints)} checkpoints; give one per checkpoint")
    for name in names:
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise ValueError(f"model name {name!r} is not usable in file names; pass --names with plain names")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"model names {duplicates} occur more than once; pass --names with one unique name per checkpoint")
    return names


def _load_model(path: Path, name: str, args: argparse.Namespace) -> LoadedModel:
    from jetnu.models.module import load_tagger

    module = load_tagger(path)
    try:
        # mmap keeps this second read of the checkpoint cheap: only the small entries are touched.
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # files written without torch's zip format cannot be memory-mapped
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    stored, source, trained_on = _stored_split(path, checkpoint)
    split = _resolve_split(stored, source, args, path) if args.split == "test" else None
    return LoadedModel(name, path, module, module.input_spec, split, source, trained_on)


def _stored_split(path: Path, checkpoint: dict) -> tuple[dict, str, str | None]:
    """Return the split arguments stored with a checkpoint, where they came from, and the training data path."""
    hyper_parameters = checkpoint.get("datamodule_hyper_parameters")
    if isinstance(hyper_parameters, dict) and any(key in hyper_parameters for key in SPLIT_KEYS):
        stored = {key: hyper_parameters[key] for key in SPLIT_KEYS if key in hyper_parameters}
        return stored, "checkpoint", hyper_parameters.get("path")

    # Lightning writes checkpoints to <log_dir>/checkpoints and LightningCLI the run config to <log_dir>.
    config_path = path.parent.parent / "config.yaml"
    if path.parent.name == "checkpoints" and config_path.is_file():
        try:
            config = yaml.safe_load(config_path.read_text()) or {}
        except yaml.YAMLError as error:
            log.warning("ignoring unreadable run config %s: %s", config_path, error)
            config = {}
        data = config.get("data") if isinstance(config, dict) else None
        if isinstance(data, dict) and isinstance(data.get("init_args"), dict):
            data = data["init_args"]  # the class_path/init_args form of LightningCLI configs
        if isinstance(data, dict) and any(key in data for key in SPLIT_KEYS):
            stored = {key: data[key] for key in SPLIT_KEYS if key in data}
            return stored, str(config_path), data.get("path")
    return {}, "command line", None


def _resolve_split(stored: dict, source: str, args: argparse.Namespace, path: Path) -> SplitParameters:
    from jetnu.data.datamodule import ImageDataModule

    defaults = inspect.signature(ImageDataModule.__init__).parameters
    values = {}
    for key in SPLIT_KEYS:
        flag = getattr(args, key)
        if key in stored:
            if flag is not None and flag != stored[key]:
                raise ValueError(
                    f"--{key.replace('_', '-')} {flag!r} contradicts {key}={stored[key]!r} stored with {str(path)!r} "
                    f"(from {source}); with other values the test entries could include training entries, so drop "
                    f"the flag or use --split all"
                )
            values[key] = stored[key]
        else:
            values[key] = flag if flag is not None else defaults[key].default
    return SplitParameters(**values)


def _common_class_names(models: list[LoadedModel]) -> tuple[str, ...]:
    class_names = models[0].spec.class_names
    for model in models[1:]:
        if model.spec.class_names != class_names:
            raise ValueError(
                f"models classify different classes: {models[0].name!r} {list(class_names)}, "
                f"{model.name!r} {list(model.spec.class_names)}; evaluate them separately"
            )
    return class_names


def _common_split(models: list[LoadedModel], data: Path) -> SplitParameters:
    split = models[0].split
    for model in models[1:]:
        if model.split != split:
            raise ValueError(
                f"models were trained with different splits, so no common test set exists: {models[0].name!r} "
                f"{dataclasses.asdict(split)}, {model.name!r} {dataclasses.asdict(model.split)}; evaluate them "
                f"separately or on a separate file with --split all"
            )
    for model in models:
        log.info("model %s: split %s from %s", model.name, dataclasses.asdict(model.split), model.split_source)
        if model.trained_on is not None and Path(model.trained_on).expanduser().resolve() != data:
            log.warning(
                "model %s was trained on %s, not on %s; its test split excludes training entries only on the "
                "same file (use --split all for a separate file)",
                model.name,
                model.trained_on,
                data,
            )
    return split


def _entry_stop(data: Path, spec: InputSpec, max_jets: int | None) -> int | None:
    """Return the entry_stop that ImageDataModule passes to the image cache for ``max_jets``."""
    if max_jets is None:
        return None
    if max_jets < 3:
        raise ValueError(f"--max-jets must be at least 3 (one entry per split), got {max_jets}")
    from jetnu.data.cache import validate_input_file

    n_entries = validate_input_file(data, spec)
    return None if max_jets >= n_entries else max_jets


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"invalid --device {name!r}: {error}; use auto, cpu or cuda:N") from error


def _predict(model: LoadedModel, images: np.ndarray, batch_size: int, device: torch.device) -> np.ndarray:
    """Return the softmax probabilities (entries, classes) of one model, in batches."""
    from jetnu.data.images import resize_images

    module = model.module.to(device)
    batches = []
    for start in range(0, len(images), batch_size):
        batch = torch.from_numpy(images[start : start + batch_size]).to(device)
        batch = resize_images(batch, model.spec)  # (batch, channels, size, size) when the spec resizes
        batches.append(module.predict_scores(batch).float().cpu().numpy())
    module.to("cpu")
    return np.concatenate(batches).astype(np.float64)


def _check_baseline_inputs(spec: InputSpec) -> None:
    from jetnu.baseline import check_binary_classes

    check_binary_classes(spec.class_names)
    if spec.kind != "jet_image":
        raise ValueError(f"the substructure BDT needs jet constituents, but the models read {spec.kind} inputs")


def _bdt_scores(args, data: Path, spec: InputSpec, entry_stop, evaluated, labels) -> np.ndarray:
    """Train the substructure BDT and return its signal score for the evaluated entries."""
    from jetnu.baseline import bdt_signal_scores, fit_bdt, substructure_features

    features, feature_labels = substructure_features(data, spec.class_names, tree=spec.tree, entry_stop=entry_stop)
    if not np.array_equal(feature_labels[evaluated], labels):
        raise ValueError(f"the labels of tree {spec.tree!r} in {str(data)!r} differ from those the models read")
    if args.baseline_data is not None:
        train_features, train_labels = substructure_features(args.baseline_data, spec.class_names, tree=spec.tree)
    else:
        train = np.setdiff1d(np.arange(len(feature_labels)), evaluated)  # train + val entries of the split
        train_features, train_labels = features[train], feature_labels[train]

    classifier = fit_bdt(train_features, train_labels)
    return bdt_signal_scores(classifier, features[evaluated])


def _report(args, data: Path, models, class_names, split, labels, probabilities, baseline_scores) -> dict:
    """Assemble the metrics.json content (see the module docstring)."""
    purity_class = NUE_CLASS if NUE_CLASS in class_names else None
    report = {
        "data": str(data),
        "tree": models[0].spec.tree,
        "split": args.split,
        "split_parameters": None if split is None else dataclasses.asdict(split),
        "n_entries": int(labels.size),
        "class_names": list(class_names),
        "class_counts": {name: int(np.sum(labels == k)) for k, name in enumerate(class_names)},
        "bootstrap": {"resamples": args.bootstrap, "seed": args.seed, "uncertainty": "standard deviation, ddof=1"},
        "models": {},
    }
    for model in models:
        entry = {
            "checkpoint": str(model.checkpoint),
            "architecture": model.module.hparams.model,
            "split_source": model.split_source if split is not None else None,
        }
        if len(class_names) == 2:
            summary = binary_summary(labels, probabilities[model.name][:, 1], n_bootstrap=args.bootstrap, seed=args.seed)
        else:
            summary = multiclass_summary(
                labels,
                probabilities[model.name],
                class_names,
                purity_class=purity_class,
                purity=args.nue_purity,
                n_bootstrap=args.bootstrap,
                seed=args.seed,
            )
        entry.update(summary)
        report["models"][model.name] = entry

    if baseline_scores is not None:
        from jetnu.baseline import BDT_PARAMETERS
        from jetnu.substructure import FEATURE_NAMES

        training = str(args.baseline_data) if args.baseline_data is not None else "train and validation entries of --data"
        report["baselines"] = {
            "bdt": {
                "features": list(FEATURE_NAMES),
                "parameters": BDT_PARAMETERS,
                "training_data": training,
                **binary_summary(labels, baseline_scores, n_bootstrap=args.bootstrap, seed=args.seed),
            }
        }
    report["outputs"] = ["metrics.json", "scores.npz"]
    return report


def _write_outputs(out: Path, report, evaluated, labels, class_names, probabilities, baseline_scores) -> None:
    from jetnu.plotting import plot_confusion, plot_roc

    out.mkdir(parents=True, exist_ok=True)
    arrays = {"entry": evaluated.astype(np.int64), "labels": labels, "model_names": np.array(list(probabilities))}
    arrays.update({f"probabilities_{name}": values for name, values in probabilities.items()})
    if baseline_scores is not None:
        arrays["baseline_bdt"] = baseline_scores
    np.savez(out / "scores.npz", **arrays)

    if len(class_names) == 2:
        curves = {name: (labels, values[:, 1]) for name, values in probabilities.items()}
        if baseline_scores is not None:
            curves["BDT (substructure)"] = (labels, baseline_scores)
        signal, background = class_names[1], class_names[0]
    elif NUE_CLASS in class_names:
        k = list(class_names).index(NUE_CLASS)
        curves = {name: (labels == k, values[:, k]) for name, values in probabilities.items()}
        signal, background = NUE_CLASS, "all other classes"
    else:
        curves = {}
        log.info("no ROC plot: the classes %s include no %s class", list(class_names), NUE_CLASS)

    if curves and len(np.unique(next(iter(curves.values()))[0])) < 2:
        log.warning("no ROC plot: the evaluated entries contain only one of the classes %s and %s", signal, background)
    elif curves:
        plot_roc(curves, out / "roc.png", signal=signal, background=background)
        report["outputs"].append("roc.png")

    if len(class_names) > 2:
        for name, model_report in report["models"].items():
            counts = np.array(model_report["confusion_matrix"]["counts"])
            plot_confusion(counts, class_names, out / f"confusion_{name}.png", title=name)
            report["outputs"].append(f"confusion_{name}.png")

    # allow_nan=False guarantees that no NaN or Infinity token reaches the file.
    text = json.dumps(report, indent=2, allow_nan=False)
    (out / "metrics.json").write_text(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
