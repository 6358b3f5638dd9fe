"""LightningDataModule over one ROOT file: cached images, a seeded split, per-batch resize.

The input spec's ``kind`` picks what is read: jet images from a ``jets`` tree or detector
pixel maps from an ``events`` tree.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from jetnu.data.spec import InputSpec

log = logging.getLogger(__name__)


def split_entries(n_entries: int, val_fraction: float, test_fraction: float, split_seed: int) -> dict[str, np.ndarray]:
    """Draw the train, val and test entry numbers of a file with ``n_entries`` entries.

    Each array is in the order of the seeded permutation (not sorted), so taking its first
    N entries gives a random subset even of a file ordered by class. Raises ValueError when
    a split would be empty.
    """
    n_val = int(round(val_fraction * n_entries))
    n_test = int(round(test_fraction * n_entries))
    n_train = n_entries - n_val - n_test
    if min(n_train, n_val, n_test) < 1:
        raise ValueError(
            f"{n_entries} entries are too few for a train/validation/test split with fractions "
            f"{val_fraction}/{test_fraction}; use a larger file"
        )
    order = np.random.default_rng(split_seed).permutation(n_entries)
    return {"train": order[:n_train], "val": order[n_train : n_train + n_val], "test": order[n_train + n_val :]}


class ImageDataModule(pl.LightningDataModule):
    """Images from one ROOT file, split into train, validation and test sets.

    The split is a permutation drawn from ``split_seed``, so the same file, fractions and
    seed always give the same three sets, whatever the trainer's seed or device count.

    Args:
        path: ROOT file with a ``jets`` tree for jet images or an ``events`` tree for
            pixel maps (see ``jetnu.data.schema``); ``input_spec.tree`` names the tree.
        input_spec: how jets or detector hits become images; stored in the model's checkpoint.
        batch_size: entries (jets or events) per batch (per device under DDP).
        val_fraction: fraction of the entries used for validation after each epoch.
        test_fraction: fraction held out for the final test.
        split_seed: seed of the train/validation/test permutation.
        max_jets: read only the first ``max_jets`` entries, jets or events (None: all).
        max_train: train on at most this many entries of the training split (None: all); the
            validation and test splits stay as they are, so runs with different training-set
            sizes are tested on the same entries.
        cache_dir: folder of the HDF5 image cache (None: ``.jetnu_cache`` beside the file).
        num_workers: DataLoader worker processes; images live in memory, so 0 is usually fastest.
        generate_n_jets: when ``path`` does not exist, generate this many Pythia8 jets
            (half top, half QCD) into it first; None means a missing file is an error.
            Jet images only: an events file is generated with ``python -m jetnu.generate neutrino``.
        generate_seed: seed of that generation.
        generate_workers: worker processes for that generation.
    """

    def __init__(
        self,
        path: str = "data/top_default.root",
        input_spec: InputSpec = InputSpec(),
        batch_size: int = 64,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 42,
        max_jets: int | None = None,
        max_train: int | None = None,
        cache_dir: str | None = None,
        num_workers: int = 0,
        generate_n_jets: int | None = None,
        generate_seed: int = 1,
        generate_workers: int = 2,
    ):
        super().__init__()
        for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0.0 < value < 1.0:
                raise ValueError(f"--data.{name} must be between 0 and 1, got {value!r}")
        if val_fraction + test_fraction >= 1.0:
            raise ValueError(
                f"--data.val_fraction + --data.test_fraction must leave entries for training, got "
                f"{val_fraction} + {test_fraction} >= 1"
            )
        if batch_size < 1:
            raise ValueError(f"--data.batch_size must be positive, got {batch_size!r}")
        if max_jets is not None and max_jets < 3:
            raise ValueError(f"--data.max_jets must be at least 3 (one entry per split), got {max_jets!r}")
        if max_train is not None and max_train < 1:
            raise ValueError(f"--data.max_train must be positive, got {max_train!r}")

        self.path = str(path)
        self.input_spec = input_spec
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.split_seed = split_seed
        self.max_train = max_train
        self.max_jets = max_jets
        self.cache_dir = cache_dir
        self.num_workers = num_workers
        self.generate_n_jets = generate_n_jets
        self.generate_seed = generate_seed
        self.generate_workers = generate_workers
        self.datasets: dict[str, TensorDataset] = {}

    def prepare_data(self) -> None:
        """Generate the sample if asked and missing, then build the image cache (rank 0 of each node)."""
        path = Path(self.path)
        if not path.exists() and self.input_spec.kind == "pixel_map":
            ignored = "" if self.generate_n_jets is None else " (--data.generate_n_jets generates jets only)"
            raise FileNotFoundError(
                f"events file {self.path!r} not found{ignored}; pass --data.path FILE.root or create one with "
                f"`python -m jetnu.generate neutrino --n-events 10000 --seed 1 --out {self.path}`"
            )
        if not path.exists():
            if self.generate_n_jets is None:
                raise FileNotFoundError(
                    f"data file {self.path!r} not found; pass --data.path FILE.root, create one with "
                    f"`python -m jetnu.generate jets --n-jets 10000 --seed 1 --out {self.path}`, or set "
                    f"--data.generate_n_jets N to generate it here"
                )
            from jetnu.sim.pythia_jets import generate_jets

            path.parent.mkdir(parents=True, exist_ok=True)
            log.info("generating %d jets into %s (first use)", self.generate_n_jets, path)
            summary = generate_jets(self.generate_n_jets, self.generate_seed, path, workers=self.generate_workers)
            log.info(summary.describe())

        self._load_images()

    def _load_images(self) -> tuple[np.ndarray, np.ndarray]:
        from jetnu.data.cache import load_or_build_images, validate_input_file

        n_entries = validate_input_file(self.path, self.input_spec)
        entry_stop = None if self.max_jets is None or self.max_jets >= n_entries else self.max_jets
        return load_or_build_images(
            self.path, self.input_spec, tree=self.input_spec.tree, cache_dir=self.cache_dir, entry_stop=entry_stop
        )

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        images, labels = self._load_images()
        n_entries = len(labels)
        entries = "events" if self.input_spec.kind == "pixel_map" else "jets"
        try:
            bounds = split_entries(n_entries, self.val_fraction, self.test_fraction, self.split_seed)
        except ValueError as err:
            raise ValueError(f"{self.path!r} has {n_entries} {entries}: {err}") from None
        n_train = len(bounds["train"])
        if n_train < 2:
            raise ValueError(
                f"{self.path!r} has {n_entries} {entries}, which leaves {n_train} for training; use a larger file"
            )
        if self.max_train is not None and self.max_train < n_train:
            bounds["train"] = bounds["train"][: self.max_train]
            log.info("training on %d of the %d training %s (--data.max_train)", self.max_train, n_train, entries)
        for split, index in bounds.items():
            index = np.sort(index)  # contiguous reads from the cached arrays
            self.datasets[split] = TensorDataset(torch.from_numpy(images[index]), torch.from_numpy(labels[index]).long())
        self._check_classes(labels, bounds, entries)
        log.info(
            "split %d %s into %d train, %d validation, %d test",
            n_entries, entries, n_train, len(bounds["val"]), len(bounds["test"]),
        )  # fmt: skip

    def _check_classes(self, labels: np.ndarray, bounds: dict[str, np.ndarray], entries: str) -> None:
        names = self.input_spec.class_names
        present = np.unique(labels[bounds["train"]])
        if present.size < 2:
            raise ValueError(
                f"the training split of {self.path!r} contains only class {names[int(present[0])]!r}; a classifier "
                f"needs {entries} of at least two of the classes {list(names)}"
            )
        for split in ("val", "test"):
            if np.unique(labels[bounds[split]]).size < 2:
                warnings.warn(
                    f"the {split} split of {self.path!r} contains a single class, so its AUC is undefined (NaN); "
                    f"use a larger or balanced file",
                    stacklevel=2,
                )

    def _loader(self, split: str, shuffle: bool, drop_last: bool = False) -> DataLoader:
        return DataLoader(
            self.datasets[split],
            batch_size=self.batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        # A last batch of one entry breaks BatchNorm in training mode, so it is dropped.
        lone_last = len(self.datasets["train"]) % self.batch_size == 1
        return self._loader("train", shuffle=True, drop_last=lone_last)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        from jetnu.data.images import resize_images

        images, labels = batch
        return resize_images(images, self.input_spec), labels
