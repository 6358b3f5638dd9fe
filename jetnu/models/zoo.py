"""The model zoo: one explicit table of backbones, each a thin variant of a timm model.

An entry fixes architecture arguments only; everything else (``in_chans``,
``num_classes``, ``drop_rate``, ...) is a keyword override::

    create_model("resnet50", in_chans=1, num_classes=2)

Every model comes from timm with ``pretrained=False``: jetnu never downloads weights.
Local weights are loaded by `jetnu.models.weights`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

import timm
import torch.nn as nn
from timm.models.resnet import BasicBlock, ResNet


@dataclass(frozen=True)
class ZooEntry:
    """One backbone: the timm builder name (or a jetnu builder) and its fixed arguments."""

    description: str
    timm_name: str | None = None
    builder: object = None  # callable(**kwargs) -> nn.Module, used when timm_name is None
    fixed: dict = field(default_factory=dict)
    tiny_input_size: int = 32  # smallest square input the tests run it on, pixels


def _resnet_tiny(**kwargs) -> ResNet:
    """Build a ResNet with one BasicBlock per stage and narrow channels, for tests and quick runs."""
    kwargs.pop("pretrained", None)
    return ResNet(block=BasicBlock, layers=(1, 1, 1, 1), channels=(16, 32, 64, 128), stem_width=16, **kwargs)


MODEL_ZOO: dict[str, ZooEntry] = {
    "resnet50": ZooEntry("ResNet-50 (Bottleneck blocks 3-4-6-3), the network of the Brainwave study", timm_name="resnet50"),
    "resnet18": ZooEntry("ResNet-18 (BasicBlock 2-2-2-2)", timm_name="resnet18"),
    "resnet_tiny": ZooEntry("ResNet with one BasicBlock per stage, 16-128 channels", builder=_resnet_tiny),
}


def classifier_name(model: nn.Module) -> str:
    """Name of the model's classifier submodule (``fc`` for the zoo's ResNets)."""
    return getattr(model, "pretrained_cfg", {}).get("classifier") or "fc"


def list_models() -> list[str]:
    return sorted(MODEL_ZOO)


def create_model(name: str, **overrides) -> nn.Module:
    """Build the zoo entry ``name`` with random weights; ``overrides`` go to the timm constructor."""
    if name not in MODEL_ZOO:
        close = difflib.get_close_matches(name, MODEL_ZOO, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown model {name!r}; the zoo has {list_models()}.{hint}")

    entry = MODEL_ZOO[name]
    kwargs = {**entry.fixed, **overrides}
    if entry.timm_name is not None:
        return timm.create_model(entry.timm_name, pretrained=False, **kwargs)
    return entry.builder(**kwargs)
