"""The input specification: everything needed to turn raw events into network inputs.

One `InputSpec` is stored in every checkpoint (under the key ``input_spec``) and written
beside every exported model as ``input_spec.json``. Training, evaluation, the exporters
and the server all build their inputs from it, so they cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

SPEC_VERSION = 1

IMAGE_KINDS = ("jet_image", "pixel_map")
# Pixel content per image kind: constituent pT or energy for jets, hit ADC or energy for detector hits.
INTENSITIES = {"jet_image": ("pt", "e"), "pixel_map": ("adc", "energy")}
NORMALISATIONS = ("sum", "none", "scale")


@dataclass(frozen=True)
class InputSpec:
    """How raw events become a (channels, height, width) network input.

    ``kind="jet_image"``: one channel; the image covers ``-window_eta..+window_eta`` in
    Delta eta (columns, left to right) and ``-window_phi..+window_phi`` in Delta phi (rows,
    row 0 at the most negative Delta phi), measured from the jet axis after the
    preprocessing steps below.

    ``kind="pixel_map"``: detector hits of the ``events`` tree; channels are the detector
    views (0 = XZ, 1 = YZ), rows (``height``) are planes of one view counted from the
    window start along the beam, columns (``width``) are cells. The window fields, centre,
    rotate and flip apply to jet images only. `InputSpec.pixel_map()` gives the defaults.
    """

    kind: str = "jet_image"
    channels: int = 1
    height: int = 40  # pixels along Delta phi
    width: int = 40  # pixels along Delta eta
    window_eta: float = 1.0  # half-width of the image in Delta eta
    window_phi: float = 1.0  # half-width of the image in Delta phi, rad
    center: bool = True  # shift the pT-weighted centroid to the image centre
    rotate: bool = True  # turn the principal axis of the pT distribution to vertical
    flip: bool = True  # mirror so the harder half lies at positive Delta eta and Delta phi
    intensity: str = "pt"  # pixel content: jets "pt" or "e" (GeV); pixel maps "adc" (counts) or "energy" (GeV)
    normalise: str = "sum"  # "sum": each image sums to 1; "none": values as is; "scale": divided by value_scale
    value_scale: float = 1.0  # divisor of pixel values when normalise == "scale", in the intensity's unit
    resize_to: int | None = None  # square network input size in pixels (224 is ResNet-50's ImageNet size); None keeps height x width
    class_names: tuple[str, ...] = ("qcd", "top")
    tree: str = "jets"
    version: int = SPEC_VERSION

    def __post_init__(self):
        _check_choice("kind", self.kind, IMAGE_KINDS)
        _check_choice("intensity", self.intensity, INTENSITIES[self.kind])
        _check_choice("normalise", self.normalise, NORMALISATIONS)
        for name in ("channels", "height", "width"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"InputSpec.{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("window_eta", "window_phi", "value_scale"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"InputSpec.{name} must be positive, got {getattr(self, name)!r}")
        if self.resize_to is not None and int(self.resize_to) < 1:
            raise ValueError(f"InputSpec.resize_to must be a positive integer or None, got {self.resize_to!r}")
        if len(self.class_names) < 2:
            raise ValueError(f"InputSpec.class_names needs at least two classes, got {self.class_names!r}")
        object.__setattr__(self, "class_names", tuple(self.class_names))

    @classmethod
    def pixel_map(cls, **overrides) -> "InputSpec":
        """Pixel-map spec with the shape of NOvA's CVN (2 views x 100 planes x 80 cells), ADC maps summing to 1."""
        from jetnu.data.schema import EVENT_TREE, NEUTRINO_CLASS_NAMES

        values = dict(
            kind="pixel_map",
            channels=2,
            height=100,
            width=80,
            center=False,
            rotate=False,
            flip=False,
            intensity="adc",
            # Unit-sum maps match the scale of unit-sum jet images, so top-tagger features transfer.
            normalise="sum",
            class_names=NEUTRINO_CLASS_NAMES,
            tree=EVENT_TREE,
        )
        values.update(overrides)
        return cls(**values)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """Shape of one built image, before any resize: (channels, height, width)."""
        return (self.channels, self.height, self.width)

    @property
    def model_input_shape(self) -> tuple[int, int, int]:
        """Shape of one network input after the optional resize: (channels, height, width)."""
        if self.resize_to is None:
            return self.image_shape
        return (self.channels, self.resize_to, self.resize_to)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["class_names"] = list(self.class_names)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "InputSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown input spec field(s) {unknown}; known fields are {sorted(known)}")
        version = data.get("version", SPEC_VERSION)
        if version > SPEC_VERSION:
            raise ValueError(
                f"input spec version {version} is newer than this jetnu understands ({SPEC_VERSION}); upgrade jetnu"
            )
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def save(self, path: str | Path) -> None:
        """Write the spec as JSON (e.g. ``input_spec.json`` beside an exported model)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_json() + "\n")
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> "InputSpec":
        return cls.from_dict(json.loads(Path(path).read_text()))

    def image_key(self) -> str:
        """Hash of the fields that change built images (not ``resize_to``, which is applied per batch)."""
        data = self.to_dict()
        data.pop("resize_to")
        data.pop("class_names")
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _check_choice(name: str, value, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"InputSpec.{name} must be one of {list(choices)}, got {value!r}")
