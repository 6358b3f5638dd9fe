"""Jet file validation and chunked reading, on ROOT files written by uproot."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot
from conftest import jets_to_tree_columns, make_jets, write_tree

from jetnu.data import (
    JET_SCHEMA,
    BadValueError,
    BranchTypeError,
    EmptyTreeError,
    InputFileError,
    MissingBranchError,
    MissingTreeError,
    iterate_jets,
    jet_labels,
    read_jets,
    validate_jet_file,
)


def test_validate_returns_num_entries(write_jet_file):
    path = write_jet_file(num_jets=57)
    assert validate_jet_file(path) == 57


def test_missing_file_names_path(tmp_path):
    path = tmp_path / "nowhere.root"
    with pytest.raises(FileNotFoundError, match="nowhere.root"):
        validate_jet_file(path)


def test_not_root_file(tmp_path):
    path = tmp_path / "notes.root"
    path.write_text("these are not ROOT bytes\n" * 20)

    with pytest.raises(InputFileError, match="notes.root") as info:
        validate_jet_file(path)

    assert "not a ROOT file" in str(info.value)
    assert info.value.path == str(path)
    assert info.value.__cause__ is not None


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(InputFileError, match="not a file"):
        validate_jet_file(tmp_path)


def test_missing_tree_lists_trees(tmp_path):
    columns = jets_to_tree_columns(make_jets(5))
    path = write_tree(tmp_path / "wrong_tree.root", columns, tree="jet", extra_trees={"events": {"x": np.zeros(3)}})

    with pytest.raises(MissingTreeError) as info:
        validate_jet_file(path)

    message = str(info.value)
    assert "'jets'" in message
    assert "wrong_tree.root" in message
    assert "['events', 'jet']" in message
    assert "did you mean 'jet'?" in message
    assert isinstance(info.value, KeyError)
    assert info.value.tree == "jets"


def test_other_tree_name_accepted(write_jet_file):
    path = write_jet_file(tree="top_jets", num_jets=9)
    assert validate_jet_file(path, tree="top_jets") == 9
    assert len(read_jets(path, tree="top_jets")) == 9


def test_missing_branch_names_closest(tmp_path):
    jets = make_jets(5)
    jets["jet_m"] = jets.pop("jet_mass")
    path = write_tree(tmp_path / "renamed.root", jets_to_tree_columns(jets))

    with pytest.raises(MissingBranchError) as info:
        validate_jet_file(path)

    message = str(info.value)
    assert "'jet_mass'" in message
    assert "closest existing: 'jet_m'" in message
    assert "renamed.root" in message
    assert "tree 'jets'" in message
    assert info.value.branch == "jet_mass"
    assert info.value.tree == "jets"
    assert info.value.path == str(path)


def test_all_missing_branches_listed(tmp_path):
    jets = make_jets(5)
    del jets["part_eta"], jets["part_phi"]
    path = write_tree(tmp_path / "partial.root", jets_to_tree_columns(jets))

    with pytest.raises(MissingBranchError) as info:
        validate_jet_file(path)

    assert "'part_eta'" in str(info.value)
    assert "'part_phi'" in str(info.value)


def test_jagged_branch_stored_flat(tmp_path):
    jets = make_jets(5)
    flat_pt = ak.to_numpy(ak.sum(jets.pop("part_pt"), axis=1)).astype(np.float32)
    columns = jets_to_tree_columns(jets)
    columns["part_pt"] = flat_pt
    path = write_tree(tmp_path / "flat.root", columns)

    with pytest.raises(BranchTypeError) as info:
        validate_jet_file(path)

    message = str(info.value)
    assert "'part_pt'" in message
    assert "flat.root" in message
    assert "expected a variable-length list of floating-point" in message
    assert "received 'float'" in message
    assert info.value.branch == "part_pt"


def test_scalar_branch_stored_jagged(tmp_path):
    jets = make_jets(5)
    jets["jet_pt"] = ak.Array([[1.0, 2.0]] * 5)
    path = write_tree(tmp_path / "jagged_scalar.root", jets_to_tree_columns(jets))

    with pytest.raises(BranchTypeError, match="'jet_pt'.*expected one floating-point value per entry"):
        validate_jet_file(path)


@pytest.mark.parametrize(
    ("label", "received"),
    [
        (np.zeros(5, dtype=np.float32), "'float'"),
        (np.array(["qcd", "top", "qcd", "top", "qcd"]), "'char*'"),
        (np.zeros(5, dtype=np.bool_), "'bool'"),
    ],
)
def test_label_with_wrong_type(tmp_path, label, received):
    jets = make_jets(5)
    jets["label"] = label
    path = write_tree(tmp_path / "bad_label.root", jets_to_tree_columns(jets))

    with pytest.raises(BranchTypeError) as info:
        validate_jet_file(path)

    message = str(info.value)
    assert "'label'" in message
    assert "expected one signed integer value per entry" in message
    assert f"received {received}" in message


def test_double_precision_floats_accepted(tmp_path):
    jets = make_jets(6)
    jets = {name: (ak.values_astype(v, np.float64) if name != "label" else v) for name, v in jets.items()}
    path = write_tree(tmp_path / "double.root", jets_to_tree_columns(jets))

    assert validate_jet_file(path) == 6


def test_empty_tree(tmp_path):
    jets = {name: values[:0] for name, values in make_jets(3).items()}
    path = write_tree(tmp_path / "empty.root", jets_to_tree_columns(jets))

    with pytest.raises(EmptyTreeError, match="tree 'jets' in '.*empty.root' has no entries"):
        validate_jet_file(path)


def test_rntuple_rejected_with_fix(tmp_path):
    path = tmp_path / "rntuple.root"
    with uproot.recreate(path) as file:
        file["jets"] = jets_to_tree_columns(make_jets(4))

    with pytest.raises(InputFileError) as info:
        validate_jet_file(path)

    message = str(info.value)
    assert "RNTuple" in message
    assert "mktree" in message
    assert "rntuple.root" in message


def test_histogram_named_jets_rejected(tmp_path):
    path = tmp_path / "histogram.root"
    with uproot.recreate(path) as file:
        file["jets"] = np.histogram([1.0, 2.0, 3.0])

    with pytest.raises(InputFileError, match="'jets' in '.*histogram.root' is a TH1D, not a TTree"):
        validate_jet_file(path)


def test_truncated_file_raises_input_error(write_jet_file, tmp_path):
    data = write_jet_file(num_jets=3000).read_bytes()
    truncated = tmp_path / "truncated.root"
    truncated.write_bytes(data[: len(data) // 2])

    with pytest.raises(InputFileError, match="truncated.root") as info:
        read_jets(truncated)

    assert info.value.__cause__ is not None


def test_damaged_basket_raises_input_error(write_jet_file, tmp_path):
    """A few zeroed kilobytes in the middle once escaped as a bare zlib.error."""
    data = bytearray(write_jet_file(num_jets=3000).read_bytes())
    middle = len(data) // 3
    data[middle : middle + 2000] = bytes(2000)
    damaged = tmp_path / "damaged.root"
    damaged.write_bytes(bytes(data))

    with pytest.raises(InputFileError, match="damaged.root"):
        read_jets(damaged)


def test_fields_are_exactly_schema(tmp_path):
    jets = make_jets(8)
    columns = jets_to_tree_columns(jets)
    columns["run_number"] = np.arange(8, dtype=np.int64)
    path = write_tree(tmp_path / "extra.root", columns)

    arrays = read_jets(path)

    assert arrays.fields == JET_SCHEMA.branches
    assert len(arrays) == 8


def test_read_matches_written_values(tmp_path):
    jets = make_jets(40, seed=3)
    path = write_tree(tmp_path / "values.root", jets_to_tree_columns(jets))

    arrays = read_jets(path)

    for name, written in jets.items():
        assert ak.to_list(arrays[name]) == ak.to_list(written), name


def test_chunked_read_equals_one_read(write_jet_file):
    path = write_jet_file(num_jets=103)

    whole = read_jets(path, step_size=10_000)
    chunked = read_jets(path, step_size=7)

    assert len(chunked) == 103
    assert ak.array_equal(whole, chunked)


def test_iterate_reports_chunk_starts(write_jet_file):
    path = write_jet_file(num_jets=25)

    chunks = list(iterate_jets(path, step_size=10))

    assert [start for start, _ in chunks] == [0, 10, 20]
    assert [len(jets) for _, jets in chunks] == [10, 10, 5]


def test_entry_range_selects_slice(write_jet_file):
    path = write_jet_file(num_jets=60)
    whole = read_jets(path)

    chunks = list(iterate_jets(path, step_size=16, entry_start=10, entry_stop=50))
    part = read_jets(path, step_size=16, entry_start=10, entry_stop=50)

    assert chunks[0][0] == 10
    assert sum(len(jets) for _, jets in chunks) == 40
    assert ak.array_equal(part, whole[10:50])


@pytest.mark.parametrize(
    ("entry_start", "entry_stop", "error", "match"),
    [
        (None, 61, ValueError, r"entry_stop=61 is past the end: tree 'jets' in '.*' has 60 entries"),
        (30, 30, ValueError, "empty entry range entry_start=30, entry_stop=30"),
        (40, 20, ValueError, "empty entry range"),
        (-5, None, ValueError, "entry_start must be >= 0"),
        (1.5, None, TypeError, "entry_start must be an integer"),
    ],
)
def test_invalid_entry_range(write_jet_file, entry_start, entry_stop, error, match):
    path = write_jet_file(num_jets=60)
    with pytest.raises(error, match=match):
        iterate_jets(path, entry_start=entry_start, entry_stop=entry_stop)


@pytest.mark.parametrize("step_size", [0, -3, 2.5, "100 MB", True])
def test_invalid_step_size(write_jet_file, step_size):
    path = write_jet_file(num_jets=5)
    with pytest.raises(ValueError, match="step_size must be a positive number of entries"):
        iterate_jets(path, step_size=step_size)


def test_errors_raised_at_call_not_iteration(tmp_path):
    with pytest.raises(FileNotFoundError):
        iterate_jets(tmp_path / "missing.root")


def test_constituent_counters_must_agree(tmp_path):
    jets = make_jets(5)
    jets.pop("part_eta")
    columns = jets_to_tree_columns(jets)
    columns["part_eta"] = ak.Array([[0.1]] * 5)  # written with its own counter npart_eta
    path = write_tree(tmp_path / "counters.root", columns)

    with pytest.raises(InputFileError, match="entry 0 of tree 'jets'.*'part_eta' has 1 values"):
        read_jets(path)


def test_labels_out_of_range_name_entry(tmp_path):
    jets = make_jets(6)
    jets["label"] = np.array([0, 1, 1, 0, 2, 1], dtype=np.int32)
    path = write_tree(tmp_path / "labels.root", jets_to_tree_columns(jets))
    arrays = read_jets(path)

    expected = r"entry 104 of '.*labels.root': label 2 is not a valid class index"
    with pytest.raises(BadValueError, match=expected) as info:
        jet_labels(arrays, ("qcd", "top"), entry_offset=100, source=path)

    assert info.value.entry == 104
    assert info.value.branch == "label"
    assert jet_labels(arrays, ("qcd", "top", "w")).dtype == np.int64
