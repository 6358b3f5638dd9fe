"""HDF5 cache of jet images and pixel maps: hits, rebuilds, temporary files and label checks."""

from __future__ import annotations

import json
import logging
import os
import warnings

import awkward as ak
import h5py
import numpy as np
import pytest
import uproot
from conftest import jets_to_tree_columns, make_jets, write_tree

import jetnu.data.cache as cache_module
from jetnu.data import (
    BadValueError,
    InputSpec,
    MissingBranchError,
    build_jet_images,
    build_pixel_maps,
    build_pixel_maps_with_counts,
    cache_path_for,
    load_or_build_images,
    read_events,
    read_jets,
)


@pytest.fixture
def count_builds(monkeypatch):
    """Count calls of the image builder made by the cache module."""
    calls = []

    def counting_build(*args, **kwargs):
        calls.append(len(args[0]))
        return build_jet_images(*args, **kwargs)

    monkeypatch.setattr(cache_module, "build_jet_images", counting_build)
    return calls


def forbid_root_reading(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the ROOT file was opened on a cache hit")

    monkeypatch.setattr(uproot, "open", fail)


def test_build_matches_direct_images(jet_file):
    spec = InputSpec()

    images, labels = load_or_build_images(jet_file, spec, step_size=64)

    jets = read_jets(jet_file)
    np.testing.assert_array_equal(images, build_jet_images(jets, spec))
    np.testing.assert_array_equal(labels, np.asarray(jets["label"]))
    assert images.dtype == np.float32
    assert labels.dtype == np.int64


def test_second_call_is_hit(jet_file, monkeypatch, count_builds):
    spec = InputSpec()
    images, labels = load_or_build_images(jet_file, spec, step_size=64)
    assert count_builds == [64, 64, 64, 8]

    forbid_root_reading(monkeypatch)
    cached_images, cached_labels = load_or_build_images(jet_file, spec, step_size=64)

    assert count_builds == [64, 64, 64, 8]
    np.testing.assert_array_equal(cached_images, images)
    np.testing.assert_array_equal(cached_labels, labels)


def test_default_cache_folder_beside_source(jet_file):
    spec = InputSpec()
    load_or_build_images(jet_file, spec)

    path = cache_path_for(jet_file, spec)

    assert path.parent == jet_file.parent / ".jetnu_cache"
    assert path.is_file()
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_cache_attributes_record_spec_and_source(jet_file):
    spec = InputSpec(height=20, width=30)
    load_or_build_images(jet_file, spec, entry_start=5, entry_stop=50)

    with h5py.File(cache_path_for(jet_file, spec, entry_start=5, entry_stop=50)) as file:
        assert InputSpec.from_dict(json.loads(file.attrs["spec_json"])) == spec
        assert file.attrs["image_key"] == spec.image_key()
        assert file.attrs["source_path"] == str(jet_file.resolve())
        assert file.attrs["source_size"] == jet_file.stat().st_size
        assert file.attrs["source_mtime_ns"] == jet_file.stat().st_mtime_ns
        assert file.attrs["tree"] == "jets"
        assert file.attrs["entry_start"] == 5
        assert file.attrs["entry_stop"] == 50
        assert file["images"].shape == (45, 1, 20, 30)


def test_cache_dir_override(jet_file, tmp_path):
    cache_dir = tmp_path / "elsewhere"
    spec = InputSpec()

    load_or_build_images(jet_file, spec, cache_dir=cache_dir)

    assert cache_path_for(jet_file, spec, cache_dir=cache_dir).is_file()
    assert not (jet_file.parent / ".jetnu_cache").exists()


def test_spec_change_rebuilds(jet_file, count_builds):
    first, _ = load_or_build_images(jet_file, InputSpec())
    second, _ = load_or_build_images(jet_file, InputSpec(height=20, width=20))

    assert len(count_builds) == 2
    assert first.shape == (200, 1, 40, 40)
    assert second.shape == (200, 1, 20, 20)
    assert cache_path_for(jet_file, InputSpec()) != cache_path_for(jet_file, InputSpec(height=20, width=20))


def test_resize_and_class_names_share_cache(jet_file, monkeypatch):
    images, _ = load_or_build_images(jet_file, InputSpec())

    forbid_root_reading(monkeypatch)
    other_spec = InputSpec(resize_to=224, class_names=("background", "signal"))
    cached, _ = load_or_build_images(jet_file, other_spec)

    np.testing.assert_array_equal(cached, images)


def test_touched_source_rebuilds(jet_file, count_builds, caplog):
    spec = InputSpec()
    load_or_build_images(jet_file, spec)
    stat = jet_file.stat()
    os.utime(jet_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))

    with caplog.at_level(logging.INFO, logger="jetnu.data.cache"):
        load_or_build_images(jet_file, spec)

    assert len(count_builds) == 2
    assert "rebuilding jet image cache" in caplog.text
    assert "source_mtime_ns" in caplog.text
    assert len(list(cache_path_for(jet_file, spec).parent.iterdir())) == 1


def test_rewritten_source_rebuilds(tmp_path):
    path = write_tree(tmp_path / "sample.root", jets_to_tree_columns(make_jets(30, seed=1)))
    first, _ = load_or_build_images(path, InputSpec())

    write_tree(path, jets_to_tree_columns(make_jets(30, seed=2)))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second, _ = load_or_build_images(path, InputSpec())

    np.testing.assert_array_equal(second, build_jet_images(read_jets(path), InputSpec()))
    assert not np.array_equal(first, second)


def test_entry_ranges_cached_separately(jet_file):
    spec = InputSpec()
    whole, whole_labels = load_or_build_images(jet_file, spec)

    part, part_labels = load_or_build_images(jet_file, spec, entry_start=20, entry_stop=90, step_size=32)

    np.testing.assert_array_equal(part, whole[20:90])
    np.testing.assert_array_equal(part_labels, whole_labels[20:90])
    assert cache_path_for(jet_file, spec, entry_start=20, entry_stop=90).is_file()
    assert cache_path_for(jet_file, spec, entry_start=20, entry_stop=90) != cache_path_for(jet_file, spec)


def test_fractional_entry_rejected_before_lookup(jet_file):
    """A float entry_start must not be rounded into the cache key of an integer one."""
    load_or_build_images(jet_file, InputSpec(), entry_start=1)
    with pytest.raises(TypeError, match="entry_start must be an integer"):
        load_or_build_images(jet_file, InputSpec(), entry_start=1.5)


def test_tree_part_of_key(write_jet_file):
    path = write_jet_file(tree="top_jets", num_jets=12)
    spec = InputSpec()

    images, _ = load_or_build_images(path, spec, tree="top_jets")

    assert images.shape[0] == 12
    assert cache_path_for(path, spec, tree="top_jets").is_file()
    assert cache_path_for(path, spec, tree="top_jets") != cache_path_for(path, spec)


def test_corrupt_cache_rebuilt(jet_file, count_builds, caplog):
    spec = InputSpec()
    images, labels = load_or_build_images(jet_file, spec)
    path = cache_path_for(jet_file, spec)
    path.write_bytes(b"not an HDF5 file" * 100)

    with caplog.at_level(logging.INFO, logger="jetnu.data.cache"):
        rebuilt, rebuilt_labels = load_or_build_images(jet_file, spec)

    assert len(count_builds) == 2
    assert "rebuilding unreadable jet image cache" in caplog.text
    np.testing.assert_array_equal(rebuilt, images)
    np.testing.assert_array_equal(rebuilt_labels, labels)
    with h5py.File(path) as file:
        assert file["images"].shape == images.shape


def test_truncated_cache_rebuilt(jet_file, count_builds):
    spec = InputSpec()
    images, _ = load_or_build_images(jet_file, spec)
    path = cache_path_for(jet_file, spec)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])

    rebuilt, _ = load_or_build_images(jet_file, spec)

    assert len(count_builds) == 2
    np.testing.assert_array_equal(rebuilt, images)


def test_cache_with_wrong_shape_rebuilt(jet_file, count_builds, caplog):
    spec = InputSpec()
    load_or_build_images(jet_file, spec)
    with h5py.File(cache_path_for(jet_file, spec), "r+") as file:
        del file["images"]
        file["images"] = np.zeros((200, 1, 8, 8), dtype=np.float32)

    with caplog.at_level(logging.INFO, logger="jetnu.data.cache"):
        images, _ = load_or_build_images(jet_file, spec)

    assert len(count_builds) == 2
    assert images.shape == (200, 1, 40, 40)
    assert "rebuilding jet image cache" in caplog.text


def test_no_temporary_files_left(jet_file):
    spec = InputSpec()
    load_or_build_images(jet_file, spec, step_size=50)
    load_or_build_images(jet_file, InputSpec(height=10, width=10), step_size=50)

    names = sorted(p.name for p in (jet_file.parent / ".jetnu_cache").iterdir())

    assert len(names) == 2
    assert all(name.endswith(".h5") and not name.startswith(".") for name in names)


def test_failed_build_leaves_no_files(jet_file, monkeypatch):
    calls = []

    def failing_build(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("builder failed on the second chunk")
        return build_jet_images(*args, **kwargs)

    monkeypatch.setattr(cache_module, "build_jet_images", failing_build)
    with pytest.raises(RuntimeError, match="second chunk"):
        load_or_build_images(jet_file, InputSpec(), step_size=50)

    folder = jet_file.parent / ".jetnu_cache"
    assert not folder.exists() or list(folder.iterdir()) == []


def test_labels_out_of_range_name_entry(tmp_path):
    jets = make_jets(40)
    jets["label"] = np.where(np.arange(40) == 33, 3, jets["label"]).astype(np.int32)
    path = write_tree(tmp_path / "labels.root", jets_to_tree_columns(jets))

    with pytest.raises(BadValueError, match=r"entry 33 of '.*labels.root': label 3 is not a valid class index"):
        load_or_build_images(path, InputSpec(), step_size=16)

    images, labels = load_or_build_images(path, InputSpec(class_names=("a", "b", "c", "d")), step_size=16)
    assert labels[33] == 3

    # Class names are not part of the cache key, so a hit is checked against the new spec.
    with pytest.raises(BadValueError, match="entry 33"):
        load_or_build_images(path, InputSpec(class_names=("a", "b", "c")))


def test_empty_jets_warned_once_per_call(tmp_path):
    jets = make_jets(30)
    empty = np.isin(np.arange(30), [3, 17, 25])
    for name in ("part_pt", "part_eta", "part_phi", "part_e"):
        counts = ak.to_numpy(ak.num(jets[name]))
        kept_values = ak.flatten(jets[name])[np.repeat(~empty, counts)]
        jets[name] = ak.unflatten(kept_values, np.where(empty, 0, counts))
    path = write_tree(tmp_path / "some_empty.root", jets_to_tree_columns(jets))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images, _ = load_or_build_images(path, InputSpec(), step_size=8)

    assert len(caught) == 1
    assert "3 of 30 jets" in str(caught[0].message)
    assert images[[3, 17, 25]].sum() == 0


def test_progress_bar_on_request(jet_file, capsys):
    load_or_build_images(jet_file, InputSpec(), progress=True)
    assert "jet/s" in capsys.readouterr().err


def test_progress_bar_off_without_terminal(jet_file, capsys):
    load_or_build_images(jet_file, InputSpec())
    assert capsys.readouterr().err == ""


def test_missing_source_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.root"):
        load_or_build_images(tmp_path / "absent.root", InputSpec())


# Pixel maps from an events tree go through the same cache.

PIXEL_SPEC = InputSpec.pixel_map(height=20, width=16)


def test_pixel_maps_match_direct_build(event_file):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        images, labels = load_or_build_images(event_file, PIXEL_SPEC, step_size=16)
        direct = build_pixel_maps(read_events(event_file), PIXEL_SPEC)

    events = read_events(event_file)
    np.testing.assert_array_equal(images, direct)
    np.testing.assert_array_equal(labels, np.asarray(events["label"]))
    assert images.shape == (60, 2, 20, 16)
    assert images.dtype == np.float32
    assert labels.dtype == np.int64
    assert cache_path_for(event_file, PIXEL_SPEC).name.startswith("events.events.")


def test_pixel_map_second_call_is_hit(event_file, monkeypatch):
    calls = []

    def counting_build(events, *args, **kwargs):
        calls.append(len(events))
        return build_pixel_maps_with_counts(events, *args, **kwargs)

    monkeypatch.setattr(cache_module, "build_pixel_maps_with_counts", counting_build)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        images, labels = load_or_build_images(event_file, PIXEL_SPEC, step_size=25)
    assert calls == [25, 25, 10]

    forbid_root_reading(monkeypatch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cached_images, cached_labels = load_or_build_images(event_file, PIXEL_SPEC, step_size=25)

    assert calls == [25, 25, 10]
    assert caught == []
    np.testing.assert_array_equal(cached_images, images)
    np.testing.assert_array_equal(cached_labels, labels)


def test_pixel_map_intensity_part_of_key(event_file):
    energy_spec = InputSpec.pixel_map(height=20, width=16, intensity="energy", value_scale=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adc, _ = load_or_build_images(event_file, PIXEL_SPEC)
        energy, _ = load_or_build_images(event_file, energy_spec)

    assert cache_path_for(event_file, PIXEL_SPEC) != cache_path_for(event_file, energy_spec)
    assert cache_path_for(event_file, energy_spec).is_file()
    # make_events writes hit_energy = 1e-4 * hit_adc, so the two scales give maps equal to float32 precision.
    np.testing.assert_allclose(energy, adc, rtol=1e-5)


def test_pixel_map_warnings_once_per_build(event_file):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_or_build_images(event_file, PIXEL_SPEC, step_size=7)

    # A 20-plane window drops hits in most events and misses some events entirely.
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2
    assert messages[0].startswith("dropped ")
    assert "events.root" in messages[0]
    assert "of 60 events" in messages[1]
    assert all(w.filename == __file__ for w in caught)


def test_pixel_map_labels_checked(write_event_file):
    labels = np.array([0, 1, 2, 3, 4] * 4, dtype=np.int32)
    path = write_event_file("five_labels.root", num_events=20, label=labels)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(BadValueError, match=r"entry 4 of '.*five_labels.root': label 4 is not a valid class index"):
            load_or_build_images(path, PIXEL_SPEC, step_size=8)

        five_classes = InputSpec.pixel_map(height=20, width=16, class_names=("a", "b", "c", "d", "e"))
        _, loaded = load_or_build_images(path, five_classes)

    np.testing.assert_array_equal(loaded, labels)


def test_pixel_map_missing_intensity_branch(write_event_file):
    path = write_event_file("adc_only.root", hit_energy=None)

    with pytest.raises(MissingBranchError, match="'hit_energy'"):
        load_or_build_images(path, InputSpec.pixel_map(intensity="energy"))


def test_pixel_map_progress_in_events(event_file, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_or_build_images(event_file, PIXEL_SPEC, progress=True)
    assert "event/s" in capsys.readouterr().err
