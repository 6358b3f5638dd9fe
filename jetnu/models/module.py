"""The Lightning module that trains a zoo backbone as a classifier on images built from an InputSpec."""

from __future__ import annotations

import inspect
import logging
import math
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F

from jetnu.data.spec import InputSpec
from jetnu.metrics import binary_metrics, multiclass_auc
from jetnu.models.weights import load_backbone_weights
from jetnu.models.zoo import classifier_name, create_model

log = logging.getLogger(__name__)

SPEC_KEY = "input_spec"

# What trains when the model starts from init_checkpoint:
#   none        everything, at the full learning rate (training from scratch);
#   head        only the classifier; the features stay frozen, as in the Brainwave study;
#   last_stage  the classifier and the last backbone stage, the stage at backbone_lr_factor * lr;
#   full        everything, the backbone at backbone_lr_factor * lr.
FREEZE_POLICIES = ("none", "head", "last_stage", "full")


class TaggerModule(pl.LightningModule):
    """A zoo backbone with cross-entropy training, AdamW and a warm-up + cosine learning-rate schedule.

    Args:
        model: zoo name (``resnet50``, ``resnet18``, ``resnet_tiny``).
        input_spec: the spec of the images the model reads; normally linked from the
            DataModule by ``python -m jetnu.train``. Stored in every checkpoint.
        lr: peak learning rate of AdamW.
        weight_decay: AdamW weight decay.
        warmup_fraction: fraction of all optimiser steps spent ramping the learning rate
            up linearly from zero, before the cosine decay to zero.
        drop_rate: dropout before the classifier.
        init_checkpoint: optional local file to start from: a jetnu ``.ckpt`` (e.g. the top
            tagger, for transfer learning) or timm weights (``.pth``/``.safetensors``).
            The stem is adapted to the input channels and a classifier of another size is
            replaced (see `jetnu.models.weights`). Nothing is ever downloaded.
        freeze: which parameters train, one of ``FREEZE_POLICIES`` (see there). Frozen
            BatchNorm layers stay in eval mode, so their running statistics do not move.
        backbone_lr_factor: learning-rate factor of the trainable backbone parameters under
            the ``last_stage`` and ``full`` policies.
    """

    def __init__(
        self,
        model: str = "resnet50",
        input_spec: InputSpec | dict | None = None,
        lr: float = 1e-3,
        weight_decay: float = 0.05,
        warmup_fraction: float = 0.05,
        drop_rate: float = 0.0,
        init_checkpoint: str | None = None,
        freeze: str = "none",
        backbone_lr_factor: float = 0.1,
    ):
        super().__init__()
        if input_spec is None:
            input_spec = InputSpec()
        elif isinstance(input_spec, dict):
            input_spec = InputSpec.from_dict(input_spec)
        if not 0.0 <= warmup_fraction < 1.0:
            raise ValueError(f"--model.warmup_fraction must be in [0, 1), got {warmup_fraction!r}")
        if freeze not in FREEZE_POLICIES:
            raise ValueError(f"--model.freeze must be one of {list(FREEZE_POLICIES)}, got {freeze!r}")
        if freeze != "none" and not init_checkpoint:
            raise ValueError(
                f"--model.freeze {freeze} keeps random features fixed; give --model.init_checkpoint FILE "
                f"or use --model.freeze none"
            )
        if not lr > 0:
            raise ValueError(f"--model.lr must be positive, got {lr!r}")
        if not backbone_lr_factor > 0:
            raise ValueError(f"--model.backbone_lr_factor must be positive, got {backbone_lr_factor!r}")

        self.input_spec = input_spec
        # Plain types only, so checkpoints load with torch.load(weights_only=True).
        self.save_hyperparameters(
            {
                "model": model,
                "input_spec": input_spec.to_dict(),
                "lr": lr,
                "weight_decay": weight_decay,
                "warmup_fraction": warmup_fraction,
                "drop_rate": drop_rate,
                "init_checkpoint": init_checkpoint,
                "freeze": freeze,
                "backbone_lr_factor": backbone_lr_factor,
            }
        )
        self.model = create_model(
            model,
            in_chans=input_spec.channels,
            num_classes=input_spec.num_classes,
            drop_rate=drop_rate,
        )
        self.init_report = load_backbone_weights(self.model, init_checkpoint) if init_checkpoint else None
        self.freeze = freeze
        self._frozen_modules = self._apply_freeze_policy(freeze)
        # Lightning keeps the modes it finds at the start of training, so set them now.
        self.train(self.training)

        self._outputs: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {"val": [], "test": []}
        # Class probabilities and labels of the last test run, gathered over all ranks.
        self.test_probabilities: np.ndarray | None = None
        self.test_labels: np.ndarray | None = None

    def _apply_freeze_policy(self, freeze: str) -> list[torch.nn.Module]:
        """Switch off gradients outside the trainable part; return the fully frozen submodules."""
        if freeze in ("none", "full"):
            return []

        trainable = [classifier_name(self.model)]
        if freeze == "last_stage":
            trainable.append(self.model.feature_info[-1]["module"])

        frozen_modules = []
        for name, child in self.model.named_children():
            if name in trainable:
                continue
            child.requires_grad_(False)
            frozen_modules.append(child)
        log.info(
            "freeze policy %r: training only %s; the frozen layers stay in eval mode (Lightning warns about them)",
            freeze,
            trainable,
        )
        return frozen_modules

    def train(self, mode: bool = True):
        # Frozen parts stay in eval mode so BatchNorm keeps its running statistics.
        super().train(mode)
        for module in self._frozen_modules:
            module.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits for a batch of network inputs (batch, channels, height, width)."""
        return self.model(images)

    @torch.no_grad()
    def predict_scores(self, images: torch.Tensor) -> torch.Tensor:
        """Softmax class probabilities (batch, classes)."""
        return F.softmax(self(images), dim=1)

    def training_step(self, batch, batch_idx):
        images, labels = batch
        logits = self(images)
        loss = F.cross_entropy(logits, labels)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"training loss became {loss.item()} at step {self.global_step}; lower --model.lr or check the inputs"
            )
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=labels.shape[0])
        self.log("lr", self.optimizers().param_groups[0]["lr"], on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch, batch_idx):
        self._evaluation_step("val", batch)

    def test_step(self, batch, batch_idx):
        self._evaluation_step("test", batch)

    def predict_step(self, batch, batch_idx):
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self.predict_scores(images)

    def _evaluation_step(self, stage: str, batch) -> None:
        images, labels = batch
        logits = self(images)
        loss = F.cross_entropy(logits, labels)
        self.log(f"{stage}_loss", loss, on_epoch=True, sync_dist=True, batch_size=labels.shape[0])
        self._outputs[stage].append((F.softmax(logits, dim=1).detach(), labels.detach()))

    def on_validation_epoch_end(self):
        self._log_epoch_metrics("val")

    def on_test_epoch_end(self):
        self._log_epoch_metrics("test")

    def _log_epoch_metrics(self, stage: str) -> None:
        outputs = self._outputs[stage]
        self._outputs[stage] = []
        if not outputs:
            return
        probabilities = torch.cat([p for p, _ in outputs])
        labels = torch.cat([y for _, y in outputs])

        # Under DDP, DistributedSampler (no shuffling in evaluation) gives rank r the
        # entries r, r + world_size, ... and pads the shares to equal length. Gathering and
        # interleaving restores the split's order; cutting at its length drops the padding.
        if self.trainer.world_size > 1:
            n_entries = self._stage_length(stage)
            probabilities = self.all_gather(probabilities).transpose(0, 1).reshape(-1, probabilities.shape[-1])
            labels = self.all_gather(labels).transpose(0, 1).reshape(-1)
            probabilities, labels = probabilities[:n_entries], labels[:n_entries]

        probabilities = probabilities.float().cpu().numpy()
        labels = labels.cpu().numpy()
        if stage == "test":
            self.test_probabilities, self.test_labels = probabilities, labels
        predicted = probabilities.argmax(axis=1)
        metrics = {"acc": float(np.mean(predicted == labels))}
        if self.input_spec.num_classes == 2:
            binary = binary_metrics(labels, probabilities[:, 1])
            metrics["auc"] = binary["auc"]
            # Infinite when no background jet passes: 1/eps_B then exceeds the number of background jets.
            metrics["rej30"] = binary["rejection_at_eff_0.3"]
        else:
            # Macro average of the one-vs-rest AUCs, so checkpoints can monitor val_auc for any class count.
            metrics["auc"] = multiclass_auc(labels, probabilities)
        for name, value in metrics.items():
            # Every rank has the same gathered values, so the mean over ranks changes nothing.
            self.log(f"{stage}_{name}", float(value), prog_bar=(name == "auc"), sync_dist=True)

    def _stage_length(self, stage: str) -> int:
        loaders = self.trainer.val_dataloaders if stage == "val" else self.trainer.test_dataloaders
        loader = loaders[0] if isinstance(loaders, (list, tuple)) else loaders
        return len(loader.dataset)

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self._parameter_groups(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        if not math.isfinite(self.trainer.estimated_stepping_batches):
            raise ValueError(
                "the warm-up and cosine learning-rate schedule needs a finite run; set --trainer.max_epochs N "
                "or --trainer.max_steps N"
            )
        total_steps = max(1, int(self.trainer.estimated_stepping_batches))
        warmup_steps = int(self.hparams.warmup_fraction * total_steps)

        def lr_factor(step: int) -> float:
            if step < warmup_steps:
                return (step + 1) / warmup_steps
            progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def _parameter_groups(self) -> list[dict]:
        trainable = [(name, p) for name, p in self.model.named_parameters() if p.requires_grad]
        if self.freeze not in ("last_stage", "full"):
            return [{"params": [p for _, p in trainable]}]

        head_prefix = classifier_name(self.model) + "."
        head = [p for name, p in trainable if name.startswith(head_prefix)]
        backbone = [p for name, p in trainable if not name.startswith(head_prefix)]
        return [
            {"params": head},
            {"params": backbone, "lr": self.hparams.lr * self.hparams.backbone_lr_factor},
        ]

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint[SPEC_KEY] = self.input_spec.to_dict()


def load_tagger(path: str | Path, map_location: str = "cpu") -> TaggerModule:
    """Rebuild a TaggerModule from a jetnu checkpoint without unpickling code (weights_only=True)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} not found")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError or EOFError for bad files
        raise ValueError(f"cannot read checkpoint {str(path)!r}: {err}") from err
    if not isinstance(checkpoint, dict) or SPEC_KEY not in checkpoint or "hyper_parameters" not in checkpoint:
        raise ValueError(f"{str(path)!r} is not a jetnu checkpoint (no {SPEC_KEY!r} or hyper_parameters entry)")

    # Keep only the arguments this version takes, so checkpoints of earlier versions (which
    # stored e.g. pretrained_weights) still load.
    accepted = set(inspect.signature(TaggerModule.__init__).parameters) - {"self"}
    hparams = {key: value for key, value in checkpoint["hyper_parameters"].items() if key in accepted}
    hparams["input_spec"] = checkpoint[SPEC_KEY]
    hparams["init_checkpoint"] = None  # the state dict below replaces the starting weights
    hparams["freeze"] = "none"  # freezing matters for training only
    module = TaggerModule(**hparams)
    module.load_state_dict(checkpoint["state_dict"])
    module.eval()
    return module


def read_input_spec(path: str | Path) -> InputSpec:
    """Read the InputSpec stored in a jetnu checkpoint."""
    checkpoint = torch.load(Path(path), map_location="cpu", weights_only=True)
    if SPEC_KEY not in checkpoint:
        raise ValueError(f"{str(path)!r} carries no input spec; it was not written by jetnu")
    return InputSpec.from_dict(checkpoint[SPEC_KEY])
