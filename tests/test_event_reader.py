"""Events file validation and chunked reading, on ROOT files written by uproot."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot
from conftest import events_to_tree_columns, jets_to_tree_columns, make_events, make_jets, write_tree

from jetnu.data import (
    BranchTypeError,
    EmptyTreeError,
    InputFileError,
    InputSpec,
    MissingBranchError,
    MissingTreeError,
    event_schema,
    iterate_events,
    read_events,
    validate_event_file,
    validate_input_file,
)


def test_validate_returns_num_entries(write_event_file):
    path = write_event_file(num_events=37)

    assert validate_event_file(path) == 37
    assert validate_event_file(path, "energy") == 37
    assert validate_event_file(path, InputSpec.pixel_map()) == 37


def test_validate_input_file_dispatches_on_kind(event_file, jet_file):
    assert validate_input_file(event_file, InputSpec.pixel_map()) == 60
    assert validate_input_file(jet_file, InputSpec()) == 200

    with pytest.raises(MissingTreeError, match="no tree 'events'"):
        validate_input_file(jet_file, InputSpec.pixel_map())
    with pytest.raises(MissingTreeError, match="no tree 'jets'"):
        validate_input_file(event_file, InputSpec())


def test_missing_file_names_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.root"):
        validate_event_file(tmp_path / "nowhere.root")


def test_not_root_file(tmp_path):
    path = tmp_path / "notes.root"
    path.write_text("these are not ROOT bytes\n" * 20)

    with pytest.raises(InputFileError, match="notes.root") as info:
        validate_event_file(path)

    assert "as a ROOT file" in str(info.value)
    assert info.value.path == str(path)


def test_jet_file_lists_its_trees(tmp_path):
    path = write_tree(tmp_path / "jets_only.root", jets_to_tree_columns(make_jets(4)), tree="jets")

    with pytest.raises(MissingTreeError) as info:
        validate_event_file(path)

    message = str(info.value)
    assert "no tree 'events'" in message
    assert "jets_only.root" in message
    assert "['jets']" in message
    assert info.value.tree == "events"


def test_tree_name_from_spec(write_event_file):
    path = write_event_file(tree="nd_events", num_events=11)

    assert validate_event_file(path, InputSpec.pixel_map(tree="nd_events")) == 11
    assert validate_event_file(path, "adc", tree="nd_events") == 11
    with pytest.raises(MissingTreeError, match="did you mean 'nd_events'"):
        validate_event_file(path)


def test_missing_hit_view_named(write_event_file):
    path = write_event_file("no_view.root", hit_view=None)

    with pytest.raises(MissingBranchError) as info:
        validate_event_file(path)

    message = str(info.value)
    assert "'hit_view'" in message
    assert "no_view.root" in message
    assert "tree 'events'" in message
    assert info.value.branch == "hit_view"
    assert info.value.tree == "events"
    assert info.value.path == str(path)
    assert isinstance(info.value, KeyError)


def test_intensity_decides_required_branch(write_event_file):
    path = write_event_file("adc_only.root", hit_energy=None)

    assert validate_event_file(path, "adc") == 60
    with pytest.raises(MissingBranchError) as info:
        validate_event_file(path, "energy")

    assert info.value.branch == "hit_energy"
    assert "closest existing" in str(info.value)


def test_energy_only_file_rejected_for_adc(write_event_file):
    path = write_event_file("energy_only.root", hit_adc=None)

    assert validate_event_file(path, InputSpec.pixel_map(intensity="energy")) == 60
    with pytest.raises(MissingBranchError, match="'hit_adc'"):
        validate_event_file(path, InputSpec.pixel_map())


def test_float_plane_numbers_rejected(write_event_file):
    events = make_events(5)
    path = write_event_file("float_plane.root", num_events=5, hit_plane=ak.values_astype(events["hit_plane"], np.float32))

    with pytest.raises(BranchTypeError) as info:
        validate_event_file(path)

    message = str(info.value)
    assert "'hit_plane'" in message
    assert "expected a variable-length list of signed integer" in message
    assert "float_plane.root" in message
    assert info.value.branch == "hit_plane"


def test_hit_view_stored_per_event_rejected(tmp_path):
    events = make_events(5)
    events.pop("hit_view")
    columns = events_to_tree_columns(events)
    columns["hit_view"] = np.zeros(5, dtype=np.int32)
    path = write_tree(tmp_path / "flat_view.root", columns, tree="events")

    with pytest.raises(BranchTypeError, match="'hit_view'.*variable-length list.*received 'int32_t'"):
        validate_event_file(path)


def test_string_label_rejected(write_event_file):
    path = write_event_file("string_label.root", num_events=3, label=np.array(["nc", "nc", "cosmic"]))

    with pytest.raises(BranchTypeError, match="'label'.*expected one signed integer value per entry"):
        validate_event_file(path)


def test_empty_tree(tmp_path):
    events = {name: values[:0] for name, values in make_events(3).items()}
    path = write_tree(tmp_path / "empty.root", events_to_tree_columns(events), tree="events")

    with pytest.raises(EmptyTreeError, match="tree 'events' in '.*empty.root' has no entries"):
        validate_event_file(path)


def test_rntuple_rejected_with_fix(tmp_path):
    path = tmp_path / "rntuple.root"
    with uproot.recreate(path) as file:
        file["events"] = events_to_tree_columns(make_events(4))

    with pytest.raises(InputFileError) as info:
        validate_event_file(path)

    assert "RNTuple" in str(info.value)
    assert "mktree" in str(info.value)


def test_invalid_intensity_lists_choices(event_file):
    with pytest.raises(ValueError, match=r"invalid hit intensity 'pe'; expected one of \['adc', 'energy'\]"):
        validate_event_file(event_file, "pe")
    with pytest.raises(ValueError, match="invalid hit intensity"):
        iterate_events(event_file, intensity="pt")


def test_jet_spec_rejected(event_file):
    with pytest.raises(ValueError, match="kind 'jet_image'"):
        validate_event_file(event_file, InputSpec())


def test_fields_are_exactly_schema(write_event_file):
    path = write_event_file(run_number=np.arange(60, dtype=np.int64))

    adc_events = read_events(path)
    energy_events = read_events(path, intensity="energy")

    assert adc_events.fields == event_schema("adc").branches
    assert energy_events.fields == event_schema("energy").branches
    assert "hit_energy" not in adc_events.fields
    assert "hit_adc" not in energy_events.fields


def test_read_matches_written_values(tmp_path):
    events = make_events(25, seed=4)
    path = write_tree(tmp_path / "values.root", events_to_tree_columns(events), tree="events")

    arrays = read_events(path)

    for name in event_schema("adc").branches:
        assert ak.to_list(arrays[name]) == ak.to_list(events[name]), name


def test_iterate_reports_chunk_starts(write_event_file):
    path = write_event_file(num_events=25)

    chunks = list(iterate_events(path, step_size=10))

    assert [start for start, _ in chunks] == [0, 10, 20]
    assert [len(events) for _, events in chunks] == [10, 10, 5]


def test_entry_range_selects_slice(write_event_file):
    path = write_event_file(num_events=50)
    whole = read_events(path)

    chunks = list(iterate_events(path, step_size=16, entry_start=5, entry_stop=45))
    part = ak.concatenate([events for _, events in chunks])

    assert chunks[0][0] == 5
    assert len(part) == 40
    assert ak.array_equal(part, whole[5:45])


@pytest.mark.parametrize(
    ("entry_start", "entry_stop", "error", "match"),
    [
        (None, 61, ValueError, r"entry_stop=61 is past the end: tree 'events' in '.*' has 60 entries"),
        (30, 30, ValueError, "empty entry range"),
        (-1, None, ValueError, "entry_start must be >= 0"),
        (2.0, None, TypeError, "entry_start must be an integer"),
    ],
)
def test_invalid_entry_range(event_file, entry_start, entry_stop, error, match):
    with pytest.raises(error, match=match):
        iterate_events(event_file, entry_start=entry_start, entry_stop=entry_stop)


def test_invalid_step_size(event_file):
    with pytest.raises(ValueError, match="step_size must be a positive number of entries"):
        iterate_events(event_file, step_size=0)


def test_errors_raised_at_call_not_iteration(tmp_path):
    with pytest.raises(FileNotFoundError):
        iterate_events(tmp_path / "missing.root")


def test_hit_counters_must_agree(tmp_path):
    events = make_events(5)
    events.pop("hit_cell")
    columns = events_to_tree_columns(events)
    columns["hit_cell"] = ak.Array([[3]] * 5)  # written with its own counter nhit_cell
    path = write_tree(tmp_path / "counters.root", columns, tree="events")

    with pytest.raises(InputFileError, match="entry 0 of tree 'events'.*'hit_cell' has 1 values"):
        read_events(path)


def test_truncated_file_raises_input_error(write_event_file, tmp_path):
    data = write_event_file(num_events=2000).read_bytes()
    truncated = tmp_path / "truncated.root"
    truncated.write_bytes(data[: len(data) // 2])

    with pytest.raises(InputFileError, match="truncated.root"):
        read_events(truncated)
