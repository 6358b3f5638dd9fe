"""Pixel maps from detector hits: window geometry, dropped hits, value checks, normalisation, DataModule and configs."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import awkward as ak
import lightning.pytorch as pl
import numpy as np
import pytest
import torch
import yaml
from conftest import events_to_tree_columns, make_events, write_tree

import jetnu.data.pixelmaps as pixelmaps_module
from jetnu.data import (
    BadValueError,
    InputSpec,
    MissingTreeError,
    PixelMapCounts,
    build_pixel_maps,
    build_pixel_maps_with_counts,
    read_events,
)
from jetnu.data.datamodule import ImageDataModule
from jetnu.models.module import TaggerModule
from jetnu.train import JetnuCLI
from jetnu.train import main as train_main

SMALL_SPEC = InputSpec.pixel_map(height=12, width=8, normalise="none")


def hits_to_events(*events: list[tuple], energy_per_adc: float = 1e-3) -> ak.Array:
    """Build an events array from per-event lists of (view, plane, cell, adc) hits."""
    columns = {"label": [], "hit_view": [], "hit_plane": [], "hit_cell": [], "hit_adc": [], "hit_energy": []}
    for hits in events:
        columns["label"].append(0)
        columns["hit_view"].append([h[0] for h in hits])
        columns["hit_plane"].append([h[1] for h in hits])
        columns["hit_cell"].append([h[2] for h in hits])
        columns["hit_adc"].append([float(h[3]) for h in hits])
        columns["hit_energy"].append([float(h[3]) * energy_per_adc for h in hits])

    arrays = {name: ak.Array(values) for name, values in columns.items()}
    for name in ("hit_view", "hit_plane", "hit_cell"):
        arrays[name] = ak.values_astype(arrays[name], np.int32)
    for name in ("hit_adc", "hit_energy"):
        arrays[name] = ak.values_astype(arrays[name], np.float32)
    return ak.Array(arrays)


def build_quietly(events, spec, **kwargs) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_pixel_maps(events, spec, **kwargs)


def test_hits_land_at_expected_pixels():
    # View 0: planes 10, 14, 30 (view-local 5, 7, 15), cells 5, 7, 9 (median 7).
    # View 1: planes 11, 13 (view-local 5, 6), cells 40, 44 (median 42).
    events = hits_to_events(
        [(0, 10, 5, 1.0), (0, 14, 7, 2.0), (0, 30, 9, 3.0), (1, 11, 40, 4.0), (1, 13, 44, 5.0)]
    )

    maps = build_pixel_maps(events, SMALL_SPEC)

    assert maps.shape == (1, 2, 12, 8)
    assert maps.dtype == np.float32
    # The window starts at view-local plane 5; the median cell sits in column 8 // 2 = 4.
    assert maps[0, 0, 0, 2] == 1.0
    assert maps[0, 0, 2, 4] == 2.0
    assert maps[0, 0, 10, 6] == 3.0
    assert maps[0, 1, 0, 2] == 4.0
    assert maps[0, 1, 1, 6] == 5.0
    assert np.count_nonzero(maps) == 5


def test_window_starts_at_first_hit_plane():
    near = hits_to_events([(0, 0, 20, 1.0), (1, 1, 20, 2.0), (0, 6, 21, 3.0)])
    far = hits_to_events([(0, 800, 20, 1.0), (1, 801, 20, 2.0), (0, 806, 21, 3.0)])

    near_maps = build_pixel_maps(near, SMALL_SPEC)
    far_maps = build_pixel_maps(far, SMALL_SPEC)

    np.testing.assert_array_equal(near_maps, far_maps)
    assert far_maps[0, 0, 0].sum() == 1.0
    assert far_maps[0, 0, 3].sum() == 3.0


def test_views_share_plane_window():
    # The event's first hit is in view 1 (plane 3, view-local 1), so view 0 starts there too.
    events = hits_to_events([(1, 3, 30, 1.0), (0, 8, 30, 2.0), (0, 10, 30, 4.0)])

    maps = build_pixel_maps(events, SMALL_SPEC)

    assert maps[0, 1, 0].sum() == 1.0
    assert maps[0, 0, 3].sum() == 2.0
    assert maps[0, 0, 4].sum() == 4.0
    assert maps[0, 0, :3].sum() == 0.0


@pytest.mark.parametrize("view_zero_parity", [0, 1])
def test_view_plane_is_half_hit_plane(view_zero_parity):
    """Planes 2k and 2k + 1 are the k-th plane of their views, whichever view has the even planes."""
    offset_0 = view_zero_parity
    offset_1 = 1 - view_zero_parity
    events = hits_to_events(
        [(0, 40 + offset_0, 10, 1.0), (1, 40 + offset_1, 10, 2.0), (0, 46 + offset_0, 10, 3.0), (1, 46 + offset_1, 10, 4.0)]
    )

    maps = build_pixel_maps(events, SMALL_SPEC)

    assert maps[0, 0, 0, 4] == 1.0
    assert maps[0, 1, 0, 4] == 2.0
    assert maps[0, 0, 3, 4] == 3.0
    assert maps[0, 1, 3, 4] == 4.0


def test_mixed_plane_parity_in_view_raises():
    events = hits_to_events(
        [(0, 4, 10, 1.0), (1, 5, 10, 1.0)],
        [(0, 6, 10, 1.0)],
        [(0, 8, 10, 1.0), (0, 9, 10, 1.0)],
    )

    with pytest.raises(BadValueError, match=r"entry 12 of 'sample.root': branch 'hit_plane' value 9 of view 0") as info:
        build_pixel_maps(events, SMALL_SPEC, entry_offset=10, source="sample.root")

    assert "hit_plane // 2" in str(info.value)
    assert info.value.entry == 12
    assert info.value.branch == "hit_plane"


def test_median_cell_lands_in_middle_column():
    # Odd count: median 11, so cells 11..11 + 3 and 11 - 4 fit; 100 is dropped.
    odd = hits_to_events([(0, 0, 10, 1.0), (0, 2, 11, 2.0), (0, 4, 100, 4.0)])
    # Even count: middle cells 20 and 23 give 21.5, rounded down to 21.
    even = hits_to_events([(0, 0, 18, 1.0), (0, 2, 20, 2.0), (0, 4, 23, 4.0), (0, 6, 24, 8.0)])

    odd_maps = build_quietly(odd, SMALL_SPEC)
    even_maps = build_pixel_maps(even, SMALL_SPEC)

    assert odd_maps[0, 0, 0, 3] == 1.0
    assert odd_maps[0, 0, 1, 4] == 2.0
    assert odd_maps.sum() == 3.0
    assert even_maps[0, 0, 0, 1] == 1.0
    assert even_maps[0, 0, 1, 3] == 2.0
    assert even_maps[0, 0, 2, 6] == 4.0
    assert even_maps[0, 0, 3, 7] == 8.0


def test_cell_window_placed_per_view():
    events = hits_to_events([(0, 0, 10, 1.0), (1, 1, 300, 2.0)])

    maps = build_pixel_maps(events, SMALL_SPEC)

    assert maps[0, 0, 0, 4] == 1.0
    assert maps[0, 1, 0, 4] == 2.0


def test_out_of_window_hits_dropped_and_counted():
    events = hits_to_events(
        [
            (0, 0, 50, 1.0),
            (0, 22, 50, 2.0),  # view-local plane 11: the last row of a 12-plane window
            (0, 24, 50, 4.0),  # view-local plane 12: one past the window
            (1, 1, 50, 8.0),
            (1, 3, 54, 16.0),  # column 4 + 4 = 8: one past an 8-cell window
            (1, 5, 46, 32.0),  # column 0
        ]
    )

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        maps = build_pixel_maps(events, SMALL_SPEC)
    _, counts = build_pixel_maps_with_counts(events, SMALL_SPEC)

    assert maps[0, 0, 11, 4] == 2.0
    assert maps[0, 1, 2, 0] == 32.0
    assert maps.sum() == 1.0 + 2.0 + 8.0 + 32.0
    assert counts.num_outside == 2
    assert counts.num_negative == 0
    assert counts.num_hits == 6
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "dropped 2 of 6 hits (33.33%)" in message
    assert "2 outside the window" in message


def test_negative_plane_or_cell_dropped_before_window():
    events = hits_to_events([(0, -4, 10, 100.0), (1, 7, -1, 100.0), (0, 10, 10, 1.0), (1, 11, 10, 2.0)])

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        maps, counts = build_pixel_maps_with_counts(events, SMALL_SPEC)

    assert counts.num_negative == 2
    assert counts.num_outside == 0
    assert caught == []
    # The window starts at the first valid hit plane (10 // 2), not at the dropped plane -4.
    assert maps[0, 0, 0, 4] == 1.0
    assert maps[0, 1, 0, 4] == 2.0
    assert maps.sum() == 3.0


def test_negative_hits_named_in_warning():
    events = hits_to_events([(0, -2, 10, 1.0), (0, 2, 10, 1.0)])

    with pytest.warns(UserWarning, match=r"dropped 1 of 2 hits of 'neg.root' \(50.00%\): 1 with a negative plane or cell"):
        build_pixel_maps(events, SMALL_SPEC, source="neg.root")


def test_empty_events_give_zeros_and_one_warning():
    events = hits_to_events([(0, 2, 10, 5.0)], [], [(1, 3, 10, 0.0)], [], [(1, 9, 4, 1.0)])

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        maps = build_pixel_maps(events, SMALL_SPEC, entry_offset=40, source="few_hits.root")

    assert maps.shape == (5, 2, 12, 8)
    assert maps[[1, 2, 3]].sum() == 0.0
    assert maps[0].sum() == 5.0
    assert maps[4].sum() == 1.0
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "3 of 5 events of 'few_hits.root'" in message
    assert "first entries: [41, 42, 43]" in message


def test_sum_normalisation_keeps_empty_zero():
    events = hits_to_events([], [(0, 2, 10, 5.0), (1, 3, 10, 15.0)])

    maps = build_quietly(events, InputSpec.pixel_map(height=12, width=8, normalise="sum"))

    assert maps[0].sum() == 0.0
    assert maps[1].sum() == pytest.approx(1.0)
    assert maps[1, 1, 0, 4] == pytest.approx(0.75)


@pytest.mark.parametrize(("value", "problem"), [(np.nan, "is not finite"), (np.inf, "is not finite"), (-3.0, "is negative")])
def test_bad_adc_names_entry_branch_file(value, problem):
    events = hits_to_events([(0, 2, 10, 5.0)], [(0, 2, 10, 5.0)], [(0, 2, 10, 1.0), (1, 3, 10, value)])

    with pytest.raises(BadValueError, match=f"entry 102 of 'bad.root': branch 'hit_adc' \\(hit 1\\) value .* {problem}") as info:
        build_pixel_maps(events, SMALL_SPEC, entry_offset=100, source="bad.root")

    assert info.value.entry == 102
    assert info.value.branch == "hit_adc"
    assert info.value.path == "bad.root"


def test_adc_maps_ignore_bad_energy():
    events = hits_to_events([(0, 2, 10, 5.0)])
    events["hit_energy"] = ak.Array([[np.nan]])

    maps = build_pixel_maps(events, SMALL_SPEC)

    assert maps.sum() == 5.0
    with pytest.raises(BadValueError, match="'hit_energy'"):
        build_pixel_maps(events, InputSpec.pixel_map(height=12, width=8, intensity="energy"))


def test_energy_intensity_uses_hit_energy():
    events = hits_to_events([(0, 2, 10, 50.0), (1, 3, 10, 20.0), (1, 3, 10, 10.0)], energy_per_adc=0.01)
    spec = InputSpec.pixel_map(height=12, width=8, intensity="energy", normalise="none")

    maps = build_pixel_maps(events, spec)

    assert maps[0, 0, 0, 4] == pytest.approx(0.5)
    assert maps[0, 1, 0, 4] == pytest.approx(0.3)


def test_scale_normalisation_divides_by_value_scale():
    events = hits_to_events([(0, 2, 10, 50.0), (1, 3, 10, 30.0)])
    spec = InputSpec.pixel_map(height=12, width=8, normalise="scale", value_scale=20.0)

    maps = build_pixel_maps(events, spec)

    assert maps[0, 0, 0, 4] == pytest.approx(2.5)
    assert maps[0, 1, 0, 4] == pytest.approx(1.5)


@pytest.mark.parametrize("view", [2, -1])
def test_view_outside_channels_raises(view):
    events = hits_to_events([(0, 2, 10, 1.0)], [(0, 2, 10, 1.0), (view, 3, 10, 1.0)])

    with pytest.raises(BadValueError, match=f"entry 1: branch 'hit_view' \\(hit 1\\) view {view} is outside 0..1") as info:
        build_pixel_maps(events, SMALL_SPEC)

    assert info.value.branch == "hit_view"


def test_single_channel_spec_rejects_second_view():
    events = hits_to_events([(0, 2, 10, 1.0), (1, 3, 10, 1.0)])

    with pytest.raises(BadValueError, match="view 1 is outside 0..0 for an input spec with 1 channels"):
        build_pixel_maps(events, InputSpec.pixel_map(channels=1, height=12, width=8))


def test_total_adc_kept_in_large_window():
    events = make_events(20, seed=5)
    spec = InputSpec.pixel_map(height=200, width=400, normalise="none")

    maps, counts = build_pixel_maps_with_counts(ak.Array(events), spec)

    assert counts.num_dropped == 0
    expected = ak.to_numpy(ak.sum(events["hit_adc"], axis=1))
    np.testing.assert_allclose(maps.sum(axis=(1, 2, 3)), expected, rtol=1e-5)


def test_batch_equals_events_one_by_one():
    events = ak.Array(make_events(15, seed=2))
    spec = InputSpec.pixel_map()

    together = build_quietly(events, spec)
    one_by_one = np.concatenate([build_quietly(events[i : i + 1], spec) for i in range(len(events))])

    np.testing.assert_array_equal(together, one_by_one)
    assert together.any(axis=(1, 2, 3)).all()


def test_many_events_split_across_blocks(monkeypatch):
    events = ak.Array(make_events(25, seed=3))
    spec = InputSpec.pixel_map(height=20, width=16)
    whole = build_quietly(events, spec)

    # Three maps of 2 x 20 x 16 pixels per block, so 25 events take nine blocks.
    monkeypatch.setattr(pixelmaps_module, "_MAX_PIXELS_PER_BLOCK", 3 * 2 * 20 * 16)
    blocked = build_quietly(events, spec)

    np.testing.assert_array_equal(blocked, whole)


def test_counts_of_chunks_add_up():
    events = ak.Array(make_events(30, seed=6))
    events = ak.with_field(events, ak.where(ak.local_index(events["hit_adc"]) == 0, 0.0, events["hit_adc"]), "hit_adc")
    spec = InputSpec.pixel_map(height=20, width=16)

    _, whole = build_pixel_maps_with_counts(events, spec)
    _, first = build_pixel_maps_with_counts(events[:12], spec)
    _, second = build_pixel_maps_with_counts(events[12:], spec, entry_offset=12)
    summed = first + second

    assert summed.num_events == whole.num_events == 30
    assert summed.num_hits == whole.num_hits
    assert summed.num_outside == whole.num_outside > 0
    np.testing.assert_array_equal(summed.empty_entries, whole.empty_entries)
    assert PixelMapCounts().num_dropped == 0


def test_no_events_gives_empty_array():
    events = hits_to_events([(0, 2, 10, 1.0)])[:0]

    maps = build_pixel_maps(events, SMALL_SPEC)

    assert maps.shape == (0, 2, 12, 8)
    assert maps.dtype == np.float32


def test_jet_spec_rejected():
    with pytest.raises(ValueError, match="kind 'pixel_map'"):
        build_pixel_maps(hits_to_events([(0, 2, 10, 1.0)]), InputSpec())


def test_missing_field_named():
    events = hits_to_events([(0, 2, 10, 1.0)])[["hit_view", "hit_plane", "hit_cell", "hit_energy"]]

    with pytest.raises(KeyError, match="'hit_adc'"):
        build_pixel_maps(events, SMALL_SPEC)


def test_float_plane_numbers_rejected():
    events = hits_to_events([(0, 2, 10, 1.0)])
    events["hit_plane"] = ak.values_astype(events["hit_plane"], np.float32)

    with pytest.raises(TypeError, match="'hit_plane' must contain integers"):
        build_pixel_maps(events, SMALL_SPEC)


def test_maps_from_root_file(tmp_path):
    events = make_events(12, seed=8)
    path = write_tree(tmp_path / "hits.root", events_to_tree_columns(events), tree="events")
    spec = InputSpec.pixel_map()

    from_file = build_quietly(read_events(path), spec)
    in_memory = build_quietly(ak.Array(events), spec)

    np.testing.assert_array_equal(from_file, in_memory)
    assert from_file.shape == (12, 2, 100, 80)


# Pixel maps through ImageDataModule and the neutrino configs.

REPO = Path(__file__).resolve().parents[1]


def test_datamodule_serves_pixel_map_batches(write_event_file, tmp_path):
    path = write_event_file(num_events=60)
    spec = InputSpec.pixel_map(height=32, width=32)
    data = ImageDataModule(path=str(path), input_spec=spec, batch_size=8, cache_dir=str(tmp_path / "cache"))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data.prepare_data()
        data.setup("fit")
    images, labels = next(iter(data.train_dataloader()))
    images, labels = data.on_after_batch_transfer((images, labels), 0)

    assert images.shape == (8, 2, 32, 32)
    assert images.dtype == torch.float32
    assert labels.dtype == torch.int64
    assert int(labels.min()) >= 0
    assert int(labels.max()) < 4
    assert [len(data.datasets[split]) for split in ("train", "val", "test")] == [42, 9, 9]


def test_datamodule_resizes_pixel_maps(write_event_file, tmp_path):
    path = write_event_file(num_events=20)
    spec = InputSpec.pixel_map(height=32, width=24, resize_to=48)
    data = ImageDataModule(path=str(path), input_spec=spec, batch_size=4, val_fraction=0.2, test_fraction=0.2)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data.setup("fit")
    images, labels = data.on_after_batch_transfer(next(iter(data.train_dataloader())), 0)

    assert images.shape == (4, 2, 48, 48)


def test_datamodule_max_entries_limits_events(write_event_file):
    path = write_event_file(num_events=40)
    data = ImageDataModule(path=str(path), input_spec=InputSpec.pixel_map(height=16, width=16), max_jets=20)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data.setup("fit")

    assert sum(len(dataset) for dataset in data.datasets.values()) == 20


def test_datamodule_missing_events_file(tmp_path):
    path = tmp_path / "absent_events.root"
    data = ImageDataModule(path=str(path), input_spec=InputSpec.pixel_map(), generate_n_jets=100)

    with pytest.raises(FileNotFoundError) as info:
        data.prepare_data()

    message = str(info.value)
    assert f"python -m jetnu.generate neutrino --n-events 10000 --seed 1 --out {path}" in message
    assert "generate_n_jets generates jets only" in message
    assert not path.exists()


def test_datamodule_jet_file_for_pixel_spec(jet_file):
    data = ImageDataModule(path=str(jet_file), input_spec=InputSpec.pixel_map())

    with pytest.raises(MissingTreeError, match=r"no tree 'events'.*\['jets'\]"):
        data.setup("fit")


def _config(name: str) -> dict:
    return yaml.safe_load((REPO / "configs" / name).read_text())


@pytest.mark.parametrize(
    ("name", "expected_spec"),
    [
        ("nu_resnet50_transfer.yaml", InputSpec.pixel_map()),
        ("nu_resnet50_scratch.yaml", InputSpec.pixel_map()),
        ("nu_tiny_transfer.yaml", InputSpec.pixel_map(height=32, width=32)),
    ],
)
def test_nu_config_input_spec(name, expected_spec):
    config = _config(name)

    assert InputSpec(**config["data"]["input_spec"]) == expected_spec


def test_transfer_and_scratch_configs_match():
    transfer = _config("nu_resnet50_transfer.yaml")
    scratch = _config("nu_resnet50_scratch.yaml")

    assert transfer["model"].pop("freeze") == "head"
    assert scratch["model"].pop("freeze") == "none"
    # A linear head on frozen features trains at a larger learning rate than the full network.
    assert transfer["model"].pop("lr") > scratch["model"].pop("lr")
    assert transfer["model"]["init_checkpoint"] is None
    assert transfer["trainer"].pop("default_root_dir") != scratch["trainer"].pop("default_root_dir")
    assert transfer == scratch


@pytest.fixture
def no_command_line(monkeypatch):
    """Hide pytest's own arguments from LightningCLI, which warns when it receives both."""
    monkeypatch.setattr(sys, "argv", ["jetnu.train"])


def test_transfer_config_requires_checkpoint(no_command_line):
    with pytest.raises(ValueError, match="--model.init_checkpoint"):
        JetnuCLI(TaggerModule, ImageDataModule, args=["--config", str(REPO / "configs" / "nu_resnet50_transfer.yaml")], run=False)


def test_scratch_config_builds_two_view_model(no_command_line):
    cli = JetnuCLI(TaggerModule, ImageDataModule, args=["--config", str(REPO / "configs" / "nu_resnet50_scratch.yaml")], run=False)

    assert cli.model.input_spec == InputSpec.pixel_map()
    assert cli.model.model.conv1.in_channels == 2
    assert cli.model.model.get_classifier().out_features == 4


def test_tiny_transfer_config_trains(write_event_file, tmp_path, no_command_line):
    """The tiny transfer config starts from a one-channel top tagger and trains only the head."""
    torch.manual_seed(1)
    top = TaggerModule(model="resnet_tiny", input_spec=InputSpec(height=32, width=32))
    trainer = pl.Trainer(accelerator="cpu", max_epochs=0, logger=False, enable_checkpointing=False)
    trainer.strategy.connect(top)
    top_path = tmp_path / "top.ckpt"
    trainer.save_checkpoint(top_path)
    events_path = write_event_file(num_events=80)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = train_main(
            [
                "--config", str(REPO / "configs" / "nu_tiny_transfer.yaml"),
                "--model.init_checkpoint", str(top_path),
                "--data.path", str(events_path),
                "--trainer.max_epochs", "1",
                "--trainer.default_root_dir", str(tmp_path / "out"),
                "--trainer.enable_progress_bar", "false",
            ]
        )  # fmt: skip

    checkpoint = torch.load(summary["checkpoint"], weights_only=True)
    assert InputSpec.from_dict(checkpoint["input_spec"]) == InputSpec.pixel_map(height=32, width=32)
    state = checkpoint["state_dict"]
    assert state["model.fc.weight"].shape == (4, top.model.fc.in_features)
    torch.testing.assert_close(state["model.layer1.0.conv1.weight"], top.model.layer1[0].conv1.weight)
