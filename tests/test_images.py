"""Jet image building: centring, rotation, flipping, pixelisation, normalisation and resizing."""

from __future__ import annotations

import logging
import warnings

import awkward as ak
import numpy as np
import pytest
import torch
from conftest import make_jets

from jetnu.data import BadValueError, InputSpec, build_jet_images, read_jets, resize_images

NO_PREPROCESSING = dict(center=False, rotate=False, flip=False, normalise="none")


def jets_from_constituents(constituents, jet_eta=None, jet_phi=None) -> ak.Array:
    """Build jet arrays from per-jet lists of (pt, eta, phi) tuples, sorted by decreasing pT.

    Energies are pT cosh(eta), as for massless constituents. ``jet_eta`` and ``jet_phi``
    default to the pT-weighted mean of the constituents (zero for jets without any).
    """
    part = {"pt": [], "eta": [], "phi": [], "e": []}
    for jet in constituents:
        ordered = sorted(jet, key=lambda c: -c[0])
        part["pt"].append([c[0] for c in ordered])
        part["eta"].append([c[1] for c in ordered])
        part["phi"].append([c[2] for c in ordered])
        part["e"].append([c[0] * np.cosh(c[1]) for c in ordered])

    def mean(values, weights):
        return float(np.average(values, weights=weights)) if weights else 0.0

    if jet_eta is None:
        jet_eta = [mean(eta, pt) for eta, pt in zip(part["eta"], part["pt"])]
    if jet_phi is None:
        jet_phi = [mean(phi, pt) for phi, pt in zip(part["phi"], part["pt"])]

    return ak.zip(
        {
            "jet_eta": np.asarray(jet_eta, dtype=np.float32),
            "jet_phi": np.asarray(jet_phi, dtype=np.float32),
            **{f"part_{name}": ak.values_astype(ak.Array(values), np.float32) for name, values in part.items()},
        },
        depth_limit=1,
    )


def place(offsets, pts, *, angle=0.0, mirror=False, eta0=0.0, phi0=0.0):
    """Turn prong offsets (Delta eta, Delta phi) into constituents after a mirror, rotation and shift."""
    offsets = np.asarray(offsets, dtype=np.float64)
    if mirror:
        offsets = offsets * [-1.0, 1.0]
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = offsets @ rotation.T
    eta = eta0 + moved[:, 0]
    phi = (phi0 + moved[:, 1] + np.pi) % (2 * np.pi) - np.pi
    return list(zip(pts, eta, phi))


def pixel_centres(spec: InputSpec):
    """Delta eta of each column centre and Delta phi of each row centre."""
    columns = -spec.window_eta + (np.arange(spec.width) + 0.5) * 2 * spec.window_eta / spec.width
    rows = -spec.window_phi + (np.arange(spec.height) + 0.5) * 2 * spec.window_phi / spec.height
    return columns, rows


def image_centroid(image: np.ndarray, spec: InputSpec) -> tuple[float, float]:
    """Intensity-weighted (Delta eta, Delta phi) of a (height, width) image."""
    columns, rows = pixel_centres(spec)
    total = image.sum()
    return float((image.sum(axis=0) * columns).sum() / total), float((image.sum(axis=1) * rows).sum() / total)


def test_output_shape_and_dtype():
    spec = InputSpec(height=24, width=32)
    images = build_jet_images(ak.Array(make_jets(7)), spec)
    assert images.shape == (7, 1, 24, 32)
    assert images.dtype == np.float32


def test_jet_across_phi_boundary_centred():
    """Constituents at phi 3.12, 3.13 and -3.13 must land together at the image centre."""
    spec = InputSpec(rotate=False, flip=False)
    jets = jets_from_constituents([[(50.0, 0.5, 3.12), (40.0, 0.51, 3.13), (30.0, 0.49, -3.13)]])

    image = build_jet_images(jets, spec)[0, 0]

    eta_centre, phi_centre = image_centroid(image, spec)
    half_pixel = spec.window_eta / spec.width
    assert abs(eta_centre) <= half_pixel
    assert abs(phi_centre) <= half_pixel
    rows, columns = np.nonzero(image)
    assert set(rows) <= {spec.height // 2 - 1, spec.height // 2}
    assert set(columns) <= {spec.width // 2 - 1, spec.width // 2}


def test_centring_puts_centroid_at_centre():
    spec = InputSpec(rotate=False, flip=False, window_eta=1.5, window_phi=1.5)
    jets = ak.Array(make_jets(20, seed=4))
    images = build_jet_images(jets, spec)

    pixel = 2 * spec.window_eta / spec.width
    for image in images[:, 0]:
        eta_centre, phi_centre = image_centroid(image, spec)
        assert abs(eta_centre) < pixel
        assert abs(phi_centre) < pixel


def test_center_false_keeps_offsets():
    spec = InputSpec(**NO_PREPROCESSING)
    jet_eta, jet_phi = 0.2, 3.0
    offsets = [(0.33, -0.47), (-0.12, 0.26)]  # the second crosses phi = pi
    constituents = [(10.0 * (i + 1), jet_eta + de, jet_phi + dp) for i, (de, dp) in enumerate(offsets)]
    constituents = [(pt, eta, (phi + np.pi) % (2 * np.pi) - np.pi) for pt, eta, phi in constituents]
    jets = jets_from_constituents([constituents], jet_eta=[jet_eta], jet_phi=[jet_phi])

    image = build_jet_images(jets, spec)[0, 0]

    pixel = 2 * spec.window_eta / spec.width
    for (pt, _, _), (delta_eta, delta_phi) in zip(constituents, offsets):
        column = int(np.floor((delta_eta + spec.window_eta) / pixel))
        row = int(np.floor((delta_phi + spec.window_phi) / pixel))
        assert image[row, column] == pytest.approx(pt, rel=1e-6)
    assert image.sum() == pytest.approx(30.0, rel=1e-6)


@pytest.mark.parametrize("angle", [0.0, 0.4, 1.3, 2.2, 3.0, 4.1, 5.5])
@pytest.mark.parametrize("phi0", [0.3, 3.1])
def test_two_prongs_hard_prong_above_centre(angle, phi0):
    spec = InputSpec(normalise="none")
    separation, hard_pt, soft_pt = 0.62, 300.0, 100.0  # hard prong 0.155 from the centroid, mid-pixel
    constituents = place([(separation, 0.0), (0.0, 0.0)], [hard_pt, soft_pt], angle=angle, eta0=-0.7, phi0=phi0)
    jets = jets_from_constituents([constituents])

    image = build_jet_images(jets, spec)[0, 0]

    # The centroid lies between the prongs; the hard prong is separation * soft / total away from it.
    hard_offset = separation * soft_pt / (hard_pt + soft_pt)
    expected_row = int(np.floor((hard_offset + spec.window_phi) * spec.height / (2 * spec.window_phi)))
    row, column = np.unravel_index(np.argmax(image), image.shape)
    assert image[row, column] == pytest.approx(hard_pt, rel=1e-6)
    assert row == expected_row
    assert column in (spec.width // 2 - 1, spec.width // 2)


THREE_PRONGS = [(0.0, 0.0), (0.55, 0.12), (0.2, -0.35), (0.05, 0.03)]
THREE_PRONG_PTS = [250.0, 120.0, 80.0, 15.0]


@pytest.mark.parametrize("mirror", [False, True])
@pytest.mark.parametrize("angle", [0.3, 1.9, 2.8, 4.4, 6.0])
def test_three_prong_image_invariant(angle, mirror):
    """Any rotation, mirror image and shift of a jet gives the same preprocessed image."""
    spec = InputSpec(normalise="none")
    reference = jets_from_constituents([place(THREE_PRONGS, THREE_PRONG_PTS)])
    moved = jets_from_constituents(
        [place(THREE_PRONGS, THREE_PRONG_PTS, angle=angle, mirror=mirror, eta0=1.1, phi0=-3.05)]
    )

    expected = build_jet_images(reference, spec)
    image = build_jet_images(moved, spec)

    np.testing.assert_allclose(image, expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("angle", [0.3, 1.9, 4.4])
def test_three_prong_harder_half_upper_right(angle):
    spec = InputSpec(normalise="none")
    jets = jets_from_constituents([place(THREE_PRONGS, THREE_PRONG_PTS, angle=angle, eta0=0.4, phi0=2.0)])

    image = build_jet_images(jets, spec)[0, 0]

    half_h, half_w = spec.height // 2, spec.width // 2
    assert image[half_h:].sum() >= image[:half_h].sum()
    assert image[:, half_w:].sum() >= image[:, :half_w].sum()
    row, _ = np.unravel_index(np.argmax(image), image.shape)
    assert row >= half_h
    # Principal axis vertical: the spread along rows exceeds the spread along columns.
    rows, columns = np.nonzero(image)
    weights = image[rows, columns]
    assert np.cov(rows, aweights=weights) > np.cov(columns, aweights=weights)


@pytest.mark.parametrize("angle", [0.2, 1.0, 2.5])
def test_rotation_without_flip_makes_axis_vertical(angle):
    spec = InputSpec(flip=False, normalise="none")
    jets = jets_from_constituents([place([(0.5, 0.0), (0.0, 0.0)], [200.0, 100.0], angle=angle)])

    image = build_jet_images(jets, spec)[0, 0]

    _, columns = np.nonzero(image)
    assert set(columns) <= {spec.width // 2 - 1, spec.width // 2}


def test_flip_without_rotation_mirrors_harder_half():
    spec = InputSpec(rotate=False, normalise="none")
    # Hard prong at negative Delta eta and negative Delta phi before flipping.
    jets = jets_from_constituents([place([(-0.3, -0.2), (0.4, 0.3)], [300.0, 100.0])])

    image = build_jet_images(jets, spec)[0, 0]

    row, column = np.unravel_index(np.argmax(image), image.shape)
    assert row >= spec.height // 2
    assert column >= spec.width // 2


def test_sum_normalised_images_sum_to_one():
    images = build_jet_images(ak.Array(make_jets(50, seed=2)), InputSpec())
    np.testing.assert_allclose(images.sum(axis=(1, 2, 3)), 1.0, rtol=1e-5)


@pytest.mark.parametrize("intensity", ["pt", "e"])
def test_unnormalised_images_keep_gev(intensity):
    jets = ak.Array(make_jets(30, seed=5))
    spec = InputSpec(intensity=intensity, normalise="none", window_eta=1.5, window_phi=1.5)

    images = build_jet_images(jets, spec)

    expected = ak.to_numpy(ak.sum(jets[f"part_{intensity}"], axis=1))
    np.testing.assert_allclose(images.sum(axis=(1, 2, 3)), expected, rtol=1e-5)


def test_scale_normalisation_divides_by_value_scale():
    jets = ak.Array(make_jets(10, seed=5))
    raw = build_jet_images(jets, InputSpec(normalise="none"))

    scaled = build_jet_images(jets, InputSpec(normalise="scale", value_scale=250.0))

    np.testing.assert_allclose(scaled, raw / 250.0, rtol=1e-6)


def test_batch_equals_jets_one_by_one():
    jets = ak.Array(make_jets(25, seed=6))
    spec = InputSpec(height=16, width=20)

    together = build_jet_images(jets, spec)
    one_by_one = np.concatenate([build_jet_images(jets[i : i + 1], spec) for i in range(len(jets))])

    np.testing.assert_array_equal(together, one_by_one)


def test_many_jets_split_across_blocks():
    """Large images are accumulated in blocks of jets, and each block must fill only its own jets."""
    jets = ak.Array(make_jets(40, seed=7))
    spec = InputSpec(height=400, width=400)  # 40 jets x 160k pixels spans several blocks

    together = build_jet_images(jets, spec)
    one_by_one = np.concatenate([build_jet_images(jets[i : i + 1], spec) for i in range(len(jets))])

    np.testing.assert_array_equal(together, one_by_one)


def test_channels_copy_the_image():
    jets = ak.Array(make_jets(4))
    images = build_jet_images(jets, InputSpec(channels=3))
    assert images.shape == (4, 3, 40, 40)
    np.testing.assert_array_equal(images[:, 1], images[:, 0])
    np.testing.assert_array_equal(images[:, 2], images[:, 0])


def test_constituents_outside_window_dropped(caplog):
    spec = InputSpec(**NO_PREPROCESSING)
    jets = jets_from_constituents([[(10.0, 0.0, 0.0), (5.0, 1.5, 0.0), (2.0, 0.0, -1.2)]], jet_eta=[0.0], jet_phi=[0.0])

    with caplog.at_level(logging.DEBUG, logger="jetnu.data.images"):
        image = build_jet_images(jets, spec)[0, 0]

    assert image.sum() == pytest.approx(10.0)
    assert "dropped 2 of 3 constituents" in caplog.text


def test_empty_jets_give_zeros_and_one_warning():
    spec = InputSpec(**{**NO_PREPROCESSING, "normalise": "sum"})
    jets = jets_from_constituents(
        [
            [(10.0, 0.1, 0.1)],
            [],
            [(5.0, 3.0, 0.0)],  # entirely outside the window
            [(7.0, -0.2, 0.3), (3.0, 0.1, -0.1)],
        ],
        jet_eta=[0.0] * 4,
        jet_phi=[0.0] * 4,
    )

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images = build_jet_images(jets, spec, entry_offset=40)

    assert len(caught) == 1
    message = str(caught[0].message)
    assert "2 of 4 jets" in message
    assert "all zeros" in message
    assert "[41, 42]" in message
    assert not np.isnan(images).any()
    assert images[1].sum() == 0
    assert images[2].sum() == 0
    assert images[0].sum() == pytest.approx(1.0)
    assert images[3].sum() == pytest.approx(1.0)


def test_empty_warning_switched_off():
    jets = jets_from_constituents([[]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        images = build_jet_images(jets, InputSpec(), warn_empty=False)
    assert images.sum() == 0


def test_no_jets_gives_empty_array():
    jets = ak.Array(make_jets(3))[:0]
    assert build_jet_images(jets, InputSpec()).shape == (0, 1, 40, 40)


def constituents_with(field: str, value: float, *, jet: int = 2, position: int = 1):
    jets = [[(30.0, 0.1, 0.2), (20.0, -0.1, 0.1), (10.0, 0.05, -0.1)] for _ in range(4)]
    names = {"part_pt": 0, "part_eta": 1, "part_phi": 2}
    constituent = list(jets[jet][position])
    constituent[names[field]] = value
    jets[jet][position] = tuple(constituent)
    return jets


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("part_pt", np.nan, "is not finite"),
        ("part_eta", np.inf, "is not finite"),
        ("part_phi", -np.inf, "is not finite"),
        ("part_pt", -4.0, "is negative"),
    ],
)
def test_bad_constituent_value_names_entry(field, value, problem):
    jets = ak.Array(jets_from_constituents(constituents_with(field, value)))
    source = "/data/sample.root"

    with pytest.raises(BadValueError) as info:
        build_jet_images(jets, InputSpec(), entry_offset=1000, source=source)

    message = str(info.value)
    assert "entry 1002" in message
    assert f"'{source}'" in message
    assert f"branch {field!r}" in message
    assert problem in message
    assert info.value.entry == 1002
    assert info.value.branch == field
    assert info.value.path == source


def test_bad_energy_checked_only_for_energy_images():
    jets = jets_from_constituents([[(10.0, 0.1, 0.1)]] * 3)
    jets = ak.with_field(jets, ak.Array([[1.0], [np.nan], [1.0]]), "part_e")

    build_jet_images(jets, InputSpec(intensity="pt"))
    with pytest.raises(BadValueError, match="entry 1: branch 'part_e'"):
        build_jet_images(jets, InputSpec(intensity="e"))


def test_bad_jet_axis_checked_only_without_centring():
    jets = jets_from_constituents([[(10.0, 0.1, 0.1)]] * 3, jet_eta=[0.1, 0.1, 0.1], jet_phi=[0.1, np.nan, 0.1])

    build_jet_images(jets, InputSpec(center=True))
    with pytest.raises(BadValueError, match="entry 1: branch 'jet_phi' value nan is not finite"):
        build_jet_images(jets, InputSpec(center=False))


def test_missing_field_named():
    jets = ak.Array(make_jets(3))
    jets = jets[[name for name in jets.fields if name != "part_phi"]]
    with pytest.raises(KeyError, match="part_phi"):
        build_jet_images(jets, InputSpec())


def test_images_from_root_file(jet_file):
    jets = read_jets(jet_file)
    images = build_jet_images(jets, InputSpec(), source=jet_file)
    assert images.shape == (len(jets), 1, 40, 40)
    assert np.isfinite(images).all()


def test_resize_none_returns_input():
    images = torch.rand(2, 1, 40, 40)
    assert resize_images(images, InputSpec()) is images


@pytest.mark.parametrize("size", [64, 20, 40])
def test_resize_keeps_sums(size):
    numpy_images = build_jet_images(ak.Array(make_jets(6, seed=8)), InputSpec())
    numpy_images[2] = 0.0
    images = torch.from_numpy(numpy_images)

    resized = resize_images(images, InputSpec(resize_to=size))

    assert resized.shape == (6, 1, size, size)
    assert resized.dtype == torch.float32
    assert (resized >= 0).all()
    sums = resized.sum(dim=(1, 2, 3))
    torch.testing.assert_close(sums[[0, 1, 3, 4, 5]], torch.ones(5), rtol=1e-5, atol=1e-5)
    assert sums[2] == 0


def test_resize_unnormalised_keeps_total_gev():
    spec = InputSpec(normalise="none", resize_to=224)
    images = torch.from_numpy(build_jet_images(ak.Array(make_jets(3, seed=9)), spec))

    resized = resize_images(images, spec)

    torch.testing.assert_close(resized.sum(dim=(1, 2, 3)), images.sum(dim=(1, 2, 3)), rtol=1e-4, atol=1e-3)


def test_resize_moves_content_consistently():
    """A single bright pixel stays at the same relative position after upsampling."""
    images = torch.zeros(1, 1, 40, 40)
    images[0, 0, 30, 10] = 1.0

    resized = resize_images(images, InputSpec(resize_to=80))[0, 0]

    row, column = np.unravel_index(int(resized.argmax()), resized.shape)
    assert 60 <= row <= 61
    assert 20 <= column <= 21


def test_resize_rejects_unbatched():
    with pytest.raises(ValueError, match=r"\(batch, channels, height, width\)"):
        resize_images(torch.zeros(1, 40, 40), InputSpec(resize_to=20))
