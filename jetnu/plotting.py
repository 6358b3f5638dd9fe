"""ROC and confusion-matrix plots in HEP style (mplhep), written as PNG files.

Figures are drawn on matplotlib's Agg canvas and the mplhep CMS style is applied only
inside a style context, so importing or calling this module changes neither the
process's matplotlib backend nor its global rcParams. The plots carry the generic label
"jetnu simulation" and claim no experiment.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import matplotlib.style
import mplhep
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from jetnu.metrics import normalise_rows, rejection_curve, roc_auc

logger = logging.getLogger(__name__)

PLOT_STYLE = mplhep.style.CMS
PLOT_LABEL = ("jetnu", "simulation")  # bold and italic parts of the label above the axes


def plot_roc(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | Path,
    *,
    signal: str = "signal",
    background: str = "background",
) -> Path:
    """Draw background rejection 1/eps_B (log scale) against signal efficiency eps_S for several taggers.

    ``curves`` maps a legend name to ``(labels, scores)`` with label 1 for signal; the
    legend shows each tagger's AUC. A dashed line marks a random tagger (1/eps_B = 1/eps_S).
    Returns the written path.
    """
    path = Path(path)
    with matplotlib.style.context(PLOT_STYLE):
        figure = Figure(figsize=(10, 9))
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()

        lowest_rejection, highest_rejection = 1.0, 10.0
        for name, (labels, scores) in curves.items():
            efficiency, rejection = rejection_curve(labels, scores)
            auc = roc_auc(labels, scores)
            axes.plot(efficiency, rejection, label=f"{name} (AUC = {auc:.3f})")
            if rejection.size:
                highest_rejection = max(highest_rejection, float(rejection.max()))

        random_efficiency = np.linspace(0.01, 1.0, 100)
        axes.plot(random_efficiency, 1.0 / random_efficiency, linestyle="--", color="grey", label="random")

        axes.set_yscale("log")
        axes.set_xlim(0.0, 1.0)
        axes.set_ylim(lowest_rejection * 0.8, highest_rejection * 3.0)
        axes.set_xlabel(rf"Signal efficiency $\varepsilon_S$ ({signal})")
        axes.set_ylabel(rf"Background rejection $1/\varepsilon_B$ ({background})")
        axes.legend(loc="upper right")
        mplhep.label.exp_text(*PLOT_LABEL, loc=0, ax=axes)
        figure.savefig(path, dpi=100, bbox_inches="tight")
    logger.info("wrote ROC curves of %d taggers to %s", len(curves), path)
    return path


def plot_confusion(counts: np.ndarray, class_names: tuple[str, ...] | list[str], path: str | Path, *, title: str) -> Path:
    """Draw a row-normalised confusion matrix (true class in rows) with the counts in each cell.

    Cell colours and the upper number are fractions of the true class; the number in
    brackets is the count. Returns the written path.
    """
    path = Path(path)
    counts = np.asarray(counts)
    fractions = normalise_rows(counts)
    n_classes = len(class_names)
    if counts.shape != (n_classes, n_classes):
        raise ValueError(f"confusion counts must have shape ({n_classes}, {n_classes}) for {list(class_names)}, got {counts.shape}")

    with matplotlib.style.context(PLOT_STYLE):
        figure = Figure(figsize=(10, 9))
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        image = axes.imshow(np.nan_to_num(fractions), cmap="Blues", vmin=0.0, vmax=1.0)
        figure.colorbar(image, ax=axes, label="Fraction of true class")

        for row in range(n_classes):
            for column in range(n_classes):
                fraction = fractions[row, column]
                text = "n/a" if np.isnan(fraction) else f"{fraction:.2f}\n({counts[row, column]})"
                colour = "white" if fraction > 0.5 else "black"
                axes.text(column, row, text, ha="center", va="center", color=colour, fontsize=16)

        axes.set_xticks(range(n_classes), labels=list(class_names))
        axes.set_yticks(range(n_classes), labels=list(class_names))
        axes.tick_params(which="minor", length=0)
        axes.set_xlabel("Predicted class")
        axes.set_ylabel("True class")
        axes.set_title(title, fontsize=18, loc="right")
        mplhep.label.exp_text(*PLOT_LABEL, loc=0, ax=axes)
        figure.savefig(path, dpi=100, bbox_inches="tight")
    logger.info("wrote the confusion matrix of %s to %s", title, path)
    return path


def read_epoch_metrics(path: str | Path) -> dict[str, np.ndarray]:
    """Read Lightning's CSVLogger ``metrics.csv`` into one value per epoch for every logged column.

    Step-level rows and epoch-level rows share the file, each filling only its own columns;
    a column's value for an epoch is the last non-empty entry in that epoch's rows, and an
    epoch without one gets NaN.
    """
    import csv

    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "epoch" not in rows[0]:
        raise ValueError(f"{str(path)!r} is not a Lightning metrics.csv (no 'epoch' column)")

    epochs = sorted({int(float(row["epoch"])) for row in rows if row["epoch"]})
    columns = [name for name in rows[0] if name not in ("epoch", "step")]
    table = {name: np.full(len(epochs), np.nan) for name in columns}
    position = {epoch: index for index, epoch in enumerate(epochs)}
    for row in rows:
        if not row["epoch"]:
            continue
        index = position[int(float(row["epoch"]))]
        for name in columns:
            if row[name] != "":
                table[name][index] = float(row[name])
    return table
