"""Loading local weights into a zoo backbone: timm state dicts, safetensors or jetnu checkpoints.

Nothing is unpickled: ``.pt``/``.pth``/``.bin``/``.ckpt`` files are read with
``torch.load(..., weights_only=True)`` and ``.safetensors`` with safetensors.

When the file was trained on another number of input channels (a one-channel jet image
into two-view neutrino pixel maps, or three-channel ImageNet weights into one-channel jet
images), the stem convolution is adapted rather than re-initialised: the kernel summed
over the source channels is divided by the target channel count and copied into every
target channel. An input that carries the same picture in every channel then gives the
stem the same response as in the source model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from jetnu.models.zoo import classifier_name

log = logging.getLogger(__name__)

# Prefixes that wrappers put in front of backbone parameter names.
_WRAPPER_PREFIXES = ("model.", "module.", "backbone.")
_MAX_LISTED = 12  # mismatched layers listed in an error message


@dataclass
class LoadReport:
    """Outcome of loading a weights file: the tensors loaded, adapted, left at random init or unused."""

    path: str
    loaded: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)  # input convolutions re-shaped for other in_chans
    replaced_head: list[str] = field(default_factory=list)  # classifier tensors left at random init
    unused: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"loaded {len(self.loaded)} tensors from {self.path}"]
        if self.adapted:
            parts.append(f"adapted input convolution {self.adapted}")
        if self.replaced_head:
            parts.append(f"replaced classifier head {self.replaced_head} (new number of classes, random init)")
        if self.unused:
            parts.append(f"ignored {len(self.unused)} tensors not in the model")
        return "; ".join(parts)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a flat name -> tensor dict from a local weights file or a Lightning checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {str(path)!r} not found; give a local .pth, .safetensors or .ckpt file")

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError or EOFError for bad files
        raise ValueError(f"cannot read weights file {str(path)!r} with torch.load(weights_only=True): {err}") from err

    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
            break
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise ValueError(f"weights file {str(path)!r} contains no state dict of tensors")
    return _strip_prefix(data)


def _strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    for prefix in _WRAPPER_PREFIXES:
        if state and all(name.startswith(prefix) for name in state):
            return {name[len(prefix):]: tensor for name, tensor in state.items()}
    return state


def load_backbone_weights(model: nn.Module, path: str | Path) -> LoadReport:
    """Load ``path`` into ``model``, adapting the input convolution and replacing a mismatched head.

    The first convolution is adapted with timm's ``adapt_input_conv`` when the file was
    trained with another number of input channels (e.g. 3-channel ImageNet weights into
    1-channel jet images), so the stem keeps its learned filters. A classifier of a
    different size stays at random init and is reported. Any other tensor whose shape or
    name does not match raises ``ValueError`` naming the layers.
    """
    state = read_state_dict(path)
    report = LoadReport(path=str(path))
    target = model.state_dict()

    first_conv = _first_conv_weight_name(model)
    head_names = _classifier_tensor_names(model)

    new_state: dict[str, torch.Tensor] = {}
    mismatched: list[str] = []
    for name, tensor in state.items():
        if name not in target:
            report.unused.append(name)
            continue
        expected = target[name].shape
        if tensor.shape == expected:
            new_state[name] = tensor
            report.loaded.append(name)
        elif name == first_conv and tensor.ndim == 4 and tensor.shape[0] == expected[0] and tensor.shape[2:] == expected[2:]:
            new_state[name] = adapt_stem_weight(tensor, expected[1])
            report.adapted.append(f"{name} ({tensor.shape[1]} -> {expected[1]} channels)")
        elif name in head_names:
            report.replaced_head.append(name)
        else:
            mismatched.append(f"{name}: file {tuple(tensor.shape)} vs model {tuple(expected)}")

    missing = [name for name in target if name not in new_state and name not in report.replaced_head]
    missing = [name for name in missing if not name.endswith("num_batches_tracked")]
    if mismatched or missing:
        lines = mismatched + [f"{name}: not in file" for name in missing]
        more = f"\n  ... and {len(lines) - _MAX_LISTED} more" if len(lines) > _MAX_LISTED else ""
        lines = lines[:_MAX_LISTED]
        raise ValueError(
            f"weights file {str(path)!r} does not match the backbone; check that it was trained with the "
            f"same zoo model. Mismatched layers:\n  " + "\n  ".join(lines) + more
        )

    model.load_state_dict(new_state, strict=False)
    log.info(report.summary())
    return report


def adapt_stem_weight(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """Convert a stem kernel (out, source_in, kh, kw) to ``in_chans`` input channels, see the module docstring."""
    summed = weight.float().sum(dim=1, keepdim=True)  # (out, 1, kh, kw)
    adapted = summed.repeat(1, in_chans, 1, 1) / in_chans
    return adapted.to(weight.dtype)


def _first_conv_weight_name(model: nn.Module) -> str | None:
    first_conv = getattr(model, "pretrained_cfg", {}).get("first_conv") or "conv1"
    name = f"{first_conv}.weight"
    return name if name in model.state_dict() else None


def _classifier_tensor_names(model: nn.Module) -> set[str]:
    classifier = classifier_name(model)
    return {f"{classifier}.weight", f"{classifier}.bias"}
