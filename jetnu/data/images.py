"""Jet images: constituents of many jets turned into (channels, height, width) pixel grids at once.

Every step works on the flattened constituents of all jets together (per-jet sums with
``np.bincount``), so there is no Python loop over jets. The steps, each switched by the
`InputSpec`:

1. **centre**: Delta eta and Delta phi are measured from the pT-weighted centroid. Phi is
   first taken relative to the jet's first (leading) constituent and wrapped into
   [-pi, pi), so jets across the phi = +-pi boundary stay in one piece. With
   ``center=False`` the offsets are measured from the jet axis (``jet_eta``, ``jet_phi``).
2. **rotate**: the principal axis of the pT distribution (eigenvector of the larger
   eigenvalue of the pT-weighted covariance of Delta eta and Delta phi) is turned to the
   Delta phi direction, so it runs along the image columns (vertical).
3. **flip**: Delta eta is mirrored where needed so the pT sum at positive Delta eta is at
   least the pT sum at negative Delta eta, and Delta phi likewise. The harder half of the
   jet therefore lies at high column and high row index: upper right when the image is
   drawn with row 0 at the bottom (matplotlib ``origin="lower"``). After rotation the
   hardest prong of a two-prong jet sits on the vertical axis above the centre, and a
   third prong lies to the right.
4. **pixelate**: the window ``-window_eta..+window_eta`` (columns, left to right) by
   ``-window_phi..+window_phi`` (rows, row 0 at the most negative Delta phi) is split into
   ``width`` x ``height`` pixels. Each pixel contains the summed constituent pT (or
   energy) in GeV. Constituents outside the window are dropped and counted in a DEBUG log line.
5. **normalise**: ``"sum"`` divides each image by its sum, ``"none"`` keeps GeV.
"""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING

import awkward as ak
import numpy as np

from jetnu.data.errors import BadValueError
from jetnu.data.spec import InputSpec

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

# Jets per np.bincount call are capped so its float64 buffer stays near 32 MB at any image size.
_MAX_PIXELS_PER_BLOCK = 1 << 22


def build_jet_images(
    arrays: ak.Array, spec: InputSpec, *, entry_offset: int = 0, source=None, warn_empty: bool = True
) -> np.ndarray:
    """Build one image per jet as a float32 array of shape (jets, channels, height, width).

    ``arrays`` needs the jagged fields ``part_pt``, ``part_eta``, ``part_phi`` (and
    ``part_e`` for ``intensity="e"``) and, with ``center=False``, ``jet_eta`` and ``jet_phi``.
    A jet image has one intensity plane; with ``spec.channels > 1`` the plane is copied into
    every channel. Jets without constituents inside the window give all-zero images, and
    one warning per call counts them unless ``warn_empty`` is False.

    Raises BadValueError on a NaN, infinite or negative pT (or energy) value, naming the
    entry (``entry_offset`` + position in ``arrays``), the branch and ``source``.
    """
    if spec.kind != "jet_image":
        raise ValueError(f"build_jet_images needs an InputSpec of kind 'jet_image', got kind {spec.kind!r}")

    num_jets = len(arrays)
    height, width = spec.height, spec.width
    if num_jets == 0:
        return np.zeros((0, *spec.image_shape), dtype=np.float32)

    counts = ak.to_numpy(ak.num(arrays["part_pt"], axis=1)).astype(np.int64)
    jet_index = np.repeat(np.arange(num_jets), counts)
    constituents = _ConstituentView(arrays, counts, jet_index, entry_offset, source)

    pt = constituents.flat("part_pt", non_negative=True)
    eta = constituents.flat("part_eta")
    phi = constituents.flat("part_phi")
    weight = pt if spec.intensity == "pt" else constituents.flat("part_e", non_negative=True)

    # Offsets from the image centre, one value per constituent.
    if spec.center:
        delta_eta, delta_phi = _centre_on_centroid(eta, phi, pt, counts, jet_index)
    else:
        jet_eta = constituents.per_jet("jet_eta")
        jet_phi = constituents.per_jet("jet_phi")
        delta_eta = eta - jet_eta[jet_index]
        delta_phi = _wrap_phi(phi - jet_phi[jet_index])

    if spec.rotate:
        delta_eta, delta_phi = _rotate_principal_axis_vertical(delta_eta, delta_phi, pt, jet_index, num_jets)
    if spec.flip:
        delta_eta = _mirror_harder_half_positive(delta_eta, pt, jet_index, num_jets)
        delta_phi = _mirror_harder_half_positive(delta_phi, pt, jet_index, num_jets)

    planes = _pixelate(delta_eta, delta_phi, weight, jet_index, num_jets, spec)  # (jets, height, width)

    sums = planes.sum(axis=(1, 2), dtype=np.float64)
    empty = sums <= 0
    if spec.normalise == "sum":
        # Dividing empty images by 1 keeps them zero and the division in place.
        divisors = np.where(empty, 1.0, sums).astype(np.float32)
        planes /= divisors[:, None, None]
    elif spec.normalise == "scale":
        planes /= np.float32(spec.value_scale)

    num_empty = int(empty.sum())
    if warn_empty and num_empty:
        first = entry_offset + np.flatnonzero(empty)[:5]
        in_file = "" if source is None else f" of {str(source)!r}"
        warnings.warn(
            f"{num_empty} of {num_jets} jets{in_file} have no constituents with nonzero "
            f"{spec.intensity} inside the {height}x{width} image window; their images are all "
            f"zeros (first entries: {first.tolist()})",
            stacklevel=2,
        )

    if spec.channels == 1:
        return planes[:, None]
    return np.repeat(planes[:, None], spec.channels, axis=1)  # (jets, channels, height, width)


def resize_images(images: "torch.Tensor", spec: InputSpec) -> "torch.Tensor":
    """Resize a batch (batch, channels, height, width) to ``spec.resize_to`` squared pixels.

    Bilinear interpolation, antialiased when shrinking. Each image is rescaled afterwards
    so its sum is the same as before the resize: ``"sum"`` images still sum to 1 and
    ``"none"`` images keep their total pT in GeV. Returns the input unchanged when
    ``resize_to`` is None or already the image size.
    """
    if spec.resize_to is None:
        return images
    if images.ndim != 4:
        raise ValueError(
            f"resize_images expects a batch of shape (batch, channels, height, width), got shape {tuple(images.shape)}"
        )

    size = int(spec.resize_to)
    height, width = images.shape[-2:]
    if (height, width) == (size, size):
        return images

    # Imported here so that reading files and building images do not pay for importing torch.
    import torch
    import torch.nn.functional as F

    shrinking = size < height or size < width
    resized = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=shrinking)

    before = images.sum(dim=(-2, -1), keepdim=True)
    after = resized.sum(dim=(-2, -1), keepdim=True)
    scale = torch.where(after > 0, before / after.clamp_min(torch.finfo(after.dtype).tiny), torch.zeros_like(after))
    return resized * scale


class _ConstituentView:
    """Flat numpy views of jagged fields, with the finite-value checks that name the entry."""

    def __init__(self, arrays: ak.Array, counts: np.ndarray, jet_index: np.ndarray, entry_offset: int, source):
        self.arrays = arrays
        self.counts = counts
        self.jet_index = jet_index
        self.entry_offset = int(entry_offset)
        self.source = source

    def flat(self, field: str, *, non_negative: bool = False) -> np.ndarray:
        column = self._field(field)
        lengths = ak.to_numpy(ak.num(column, axis=1))
        if not np.array_equal(lengths, self.counts):
            position = int(np.flatnonzero(lengths != self.counts)[0])
            raise ValueError(
                f"entry {self.entry_offset + position}: field {field!r} has {lengths[position]} "
                f"constituents but 'part_pt' has {self.counts[position]}"
            )

        values = ak.to_numpy(ak.flatten(column, axis=1)).astype(np.float64)
        bad = ~np.isfinite(values)
        if non_negative:
            bad |= values < 0
        if bad.any():
            position = int(np.argmax(bad))
            jet = int(self.jet_index[position])
            first_of_jet = int(self.counts[:jet].sum())
            self._raise_bad(field, jet, values[position], f" (constituent {position - first_of_jet})")
        return values

    def per_jet(self, field: str) -> np.ndarray:
        values = ak.to_numpy(self._field(field)).astype(np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            jet = int(np.argmax(bad))
            self._raise_bad(field, jet, values[jet], "")
        return values

    def _field(self, field: str) -> ak.Array:
        if field not in self.arrays.fields:
            raise KeyError(f"jet images need the field {field!r}; the arrays have fields {self.arrays.fields}")
        return self.arrays[field]

    def _raise_bad(self, field: str, jet: int, value: float, detail: str):
        entry = self.entry_offset + jet
        value = float(value)
        in_file = "" if self.source is None else f" of {str(self.source)!r}"
        problem = "is negative" if np.isfinite(value) else "is not finite"
        raise BadValueError(
            f"entry {entry}{in_file}: branch {field!r} value {value!r}{detail} {problem}; "
            f"jet images need finite values and non-negative pT and energy",
            entry=entry,
            path=self.source,
            branch=field,
        )


def _wrap_phi(phi: np.ndarray) -> np.ndarray:
    """Wrap angles in rad into [-pi, pi)."""
    return (phi + np.pi) % (2 * np.pi) - np.pi


def _weighted_mean(values, weights, jet_index, num_jets, counts) -> np.ndarray:
    """Per-jet weighted mean; jets whose weights sum to zero get the plain mean (0 without constituents)."""
    weight_sum = np.bincount(jet_index, weights, minlength=num_jets)
    weighted = np.bincount(jet_index, weights * values, minlength=num_jets)
    plain = np.bincount(jet_index, values, minlength=num_jets) / np.maximum(counts, 1)
    return np.divide(weighted, weight_sum, out=plain, where=weight_sum > 0)


def _centre_on_centroid(eta, phi, pt, counts, jet_index) -> tuple[np.ndarray, np.ndarray]:
    num_jets = len(counts)

    # Phi relative to the first constituent, so a jet straddling phi = +-pi is contiguous.
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    has_constituents = counts > 0
    reference_phi = np.zeros(num_jets)
    reference_phi[has_constituents] = phi[first[has_constituents]]
    phi_from_first = _wrap_phi(phi - reference_phi[jet_index])

    eta_centre = _weighted_mean(eta, pt, jet_index, num_jets, counts)
    phi_centre = _weighted_mean(phi_from_first, pt, jet_index, num_jets, counts)
    return eta - eta_centre[jet_index], phi_from_first - phi_centre[jet_index]


def _rotate_principal_axis_vertical(delta_eta, delta_phi, pt, jet_index, num_jets):
    counts = np.bincount(jet_index, minlength=num_jets)
    mean_eta = _weighted_mean(delta_eta, pt, jet_index, num_jets, counts)
    mean_phi = _weighted_mean(delta_phi, pt, jet_index, num_jets, counts)
    x = delta_eta - mean_eta[jet_index]
    y = delta_phi - mean_phi[jet_index]

    cov_xx = _weighted_mean(x * x, pt, jet_index, num_jets, counts)
    cov_yy = _weighted_mean(y * y, pt, jet_index, num_jets, counts)
    cov_xy = _weighted_mean(x * y, pt, jet_index, num_jets, counts)

    # Angle of the major axis from the Delta eta axis, then the turn that brings it to +90 degrees.
    axis_angle = 0.5 * np.arctan2(2 * cov_xy, cov_xx - cov_yy)
    turn = np.pi / 2 - axis_angle

    # A round (or single-point) distribution has no principal axis, so it is left as it is.
    round_shape = np.hypot(2 * cov_xy, cov_xx - cov_yy) <= 1e-9 * (cov_xx + cov_yy)
    turn[round_shape] = 0.0

    cos = np.cos(turn)[jet_index]
    sin = np.sin(turn)[jet_index]
    return delta_eta * cos - delta_phi * sin, delta_eta * sin + delta_phi * cos


def _mirror_harder_half_positive(offsets, pt, jet_index, num_jets) -> np.ndarray:
    positive = np.bincount(jet_index, pt * (offsets > 0), minlength=num_jets)
    negative = np.bincount(jet_index, pt * (offsets < 0), minlength=num_jets)
    mirror = negative > positive
    return np.where(mirror[jet_index], -offsets, offsets)


def _pixelate(delta_eta, delta_phi, weight, jet_index, num_jets, spec: InputSpec) -> np.ndarray:
    height, width = spec.height, spec.width

    # Positions in pixel units: column from Delta eta, row from Delta phi.
    column_position = (delta_eta + spec.window_eta) * (width / (2 * spec.window_eta))
    row_position = (delta_phi + spec.window_phi) * (height / (2 * spec.window_phi))
    inside = (column_position >= 0) & (column_position < width) & (row_position >= 0) & (row_position < height)

    num_dropped = int(inside.size - np.count_nonzero(inside))
    if num_dropped:
        logger.debug(
            "dropped %d of %d constituents outside the image window (|Delta eta| < %g, |Delta phi| < %g)",
            num_dropped,
            inside.size,
            spec.window_eta,
            spec.window_phi,
        )

    jets = jet_index[inside]
    pixel = np.floor(row_position[inside]).astype(np.int64) * width + np.floor(column_position[inside]).astype(np.int64)
    weight = weight[inside]

    # jet_index is sorted, so each block of jets owns one contiguous run of constituents.
    pixels_per_image = height * width
    jets_per_block = max(1, _MAX_PIXELS_PER_BLOCK // pixels_per_image)
    planes = np.empty((num_jets, height, width), dtype=np.float32)
    for block_start in range(0, num_jets, jets_per_block):
        block_stop = min(block_start + jets_per_block, num_jets)
        lo, hi = np.searchsorted(jets, [block_start, block_stop])
        flat_index = (jets[lo:hi] - block_start) * pixels_per_image + pixel[lo:hi]
        summed = np.bincount(flat_index, weight[lo:hi], minlength=(block_stop - block_start) * pixels_per_image)
        planes[block_start:block_stop] = summed.reshape(block_stop - block_start, height, width)
    return planes
