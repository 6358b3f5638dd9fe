"""The top-tagging reference dataset: pandas fixed-format HDF5 files read with h5py alone.

The files here are written with h5py in the layout that pandas' HDFStore uses for a
DataFrame in fixed format: group ``/table`` with ``axis0``,
``axis1``, one ``block{k}_items``/``block{k}_values`` pair per dtype and the pandas
attributes.
"""

from __future__ import annotations

import logging
import os

import awkward as ak
import h5py
import numpy as np
import pytest
from conftest import jets_to_tree_columns, make_jets, write_tree

from jetnu.data import (
    JET_SCHEMA,
    BadValueError,
    EmptyTreeError,
    InputFileError,
    InputSpec,
    MissingBranchError,
    MissingTreeError,
    iterate_jets,
    load_or_build_images,
    read_jets,
    validate_jet_file,
)
from jetnu.data.__main__ import main as data_main
from jetnu.data.convert import convert_reference_file
from jetnu.data.datamodule import ImageDataModule
from jetnu.data.reference import (
    iterate_reference_jets,
    read_reference_jets,
    validate_reference_file,
)

NUM_SLOTS = 200
INDEX_OFFSET = 12345  # row index values that must never show up in the jets


def make_reference_columns(num_jets: int, *, seed: int = 0, num_slots: int = NUM_SLOTS) -> dict[str, np.ndarray]:
    """Return DataFrame columns like the reference dataset's, in its column order.

    Each jet has 5 to 60 massless constituents (at most ``num_slots``) around an axis
    with |eta| < 2, ordered by decreasing pT and zero-padded to ``num_slots`` slots.
    """
    rng = np.random.default_rng(seed)
    energy, px, py, pz = (np.zeros((num_jets, num_slots), dtype=np.float32) for _ in range(4))
    for jet in range(num_jets):
        count = min(int(rng.integers(5, 61)), num_slots)
        pt = np.sort(rng.exponential(15.0, count) + 0.5)[::-1]
        eta = rng.uniform(-2, 2) + rng.normal(0, 0.2, count)
        phi = rng.uniform(-np.pi, np.pi) + rng.normal(0, 0.2, count)
        px[jet, :count] = pt * np.cos(phi)
        py[jet, :count] = pt * np.sin(phi)
        pz[jet, :count] = pt * np.sinh(eta)
        energy[jet, :count] = pt * np.cosh(eta)

    columns: dict[str, np.ndarray] = {}
    for slot in range(num_slots):
        columns[f"E_{slot}"] = energy[:, slot]
        columns[f"PX_{slot}"] = px[:, slot]
        columns[f"PY_{slot}"] = py[:, slot]
        columns[f"PZ_{slot}"] = pz[:, slot]
    columns["truthE"] = energy.sum(axis=1)
    columns["truthPX"] = px.sum(axis=1)
    columns["truthPY"] = py.sum(axis=1)
    columns["truthPZ"] = pz.sum(axis=1)
    columns["ttv"] = np.zeros(num_jets, dtype=np.int64)
    columns["is_signal_new"] = rng.integers(0, 2, num_jets).astype(np.int64)
    return columns


def write_pandas_fixed(path, columns: dict[str, np.ndarray], *, key: str = "table", index=None, block_order=None):
    """Write ``columns`` as a DataFrame in pandas' fixed HDFStore format with h5py.

    Columns are grouped into one block per dtype kind (floats first, then integers), as
    pandas does. ``block_order`` lists a block's column names in another order than
    ``axis0``; ``index`` defaults to ``INDEX_OFFSET + arange(rows)``.
    """
    names = list(columns)
    num_rows = len(next(iter(columns.values())))
    index = np.arange(num_rows, dtype=np.int64) + INDEX_OFFSET if index is None else index

    blocks: list[list[str]] = []
    for kind in ("f", "i"):
        block = [name for name in names if columns[name].dtype.kind == kind]
        if block_order is not None:
            block = [name for name in block_order if name in block]
        if block:
            blocks.append(block)

    with h5py.File(path, "a") as file:
        file.attrs.update(CLASS=b"GROUP", PYTABLES_FORMAT_VERSION=b"2.1", TITLE=b"", VERSION=b"1.0")
        group = file.create_group(key)
        group.attrs.update(
            CLASS=b"GROUP",
            TITLE=b"",
            VERSION=b"1.0",
            pandas_type=b"frame",
            pandas_version=b"0.15.2",
            encoding=b"UTF-8",
            errors=b"strict",
            ndim=2,
            axis0_variety=b"regular",
            axis1_variety=b"regular",
            nblocks=len(blocks),
        )
        _array(group, "axis0", np.array(names, dtype="S"), kind=b"string")
        _array(group, "axis1", index, kind=b"integer")
        for number, block in enumerate(blocks):
            group.attrs[f"block{number}_items_variety"] = b"regular"
            values = np.stack([columns[name] for name in block], axis=1)  # (rows, block columns)
            _array(group, f"block{number}_values", values, transposed=True)
            _array(group, f"block{number}_items", np.array(block, dtype="S"), kind=b"string")
    return path


def _array(group, name, data, **attrs):
    dataset = group.create_dataset(name, data=data)
    dataset.attrs.update(CLASS=b"ARRAY", VERSION=b"2.4", TITLE=b"", FLAVOR=b"numpy", **attrs)
    return dataset


@pytest.fixture
def reference_file(tmp_path):
    """40 jets in the reference layout, row index starting at 12345."""
    columns = make_reference_columns(40, seed=3)
    return write_pandas_fixed(tmp_path / "train.h5", columns), columns


def expected_constituents(columns: dict[str, np.ndarray], jet: int) -> np.ndarray:
    """Return the non-padded (E, PX, PY, PZ) rows of one jet, in slot order, as float64."""
    rows = np.array([[columns[f"{c}_{slot}"][jet] for c in ("E", "PX", "PY", "PZ")] for slot in range(NUM_SLOTS)])
    return rows[rows[:, 0] != 0].astype(np.float64)


def assert_same_jets(left: ak.Array, right: ak.Array) -> None:
    assert left.fields == right.fields
    for name in left.fields:
        left_values = ak.to_numpy(ak.flatten(left[name], axis=None))
        right_values = ak.to_numpy(ak.flatten(right[name], axis=None))
        assert left_values.dtype == right_values.dtype, name
        assert np.array_equal(left_values, right_values), f"field {name} differs"
    for name in ("part_pt", "part_e"):
        assert ak.all(ak.num(left[name]) == ak.num(right[name])), name


# --- reading ------------------------------------------------------------------------------


def test_validate_returns_rows(reference_file):
    path, _ = reference_file
    assert validate_reference_file(path) == 40
    assert validate_jet_file(path) == 40


def test_form_matches_root_reader(reference_file, tmp_path):
    """The reference reader gives the same fields, dtypes and list layout as the ROOT reader."""
    path, _ = reference_file
    root_path = write_tree(tmp_path / "jets.root", jets_to_tree_columns(make_jets(5)))

    from_h5 = read_reference_jets(path)
    from_root = read_jets(root_path)

    assert from_h5.fields == JET_SCHEMA.branches
    assert from_h5.layout.form == from_root.layout.form
    assert str(from_h5.type.content) == str(from_root.type.content)


def test_hand_made_jet_kinematics(tmp_path):
    """Three massless constituents stored out of pT order: sum (70, 100, 40) GeV, E = 250 GeV."""
    columns = make_reference_columns(2, seed=1, num_slots=4)
    hand_made = [(50.0, -30.0, 0.0, 40.0), (100.0, 100.0, 0.0, 0.0), (100.0, 0.0, 100.0, 0.0), (0.0, 0.0, 0.0, 0.0)]
    for slot, (energy, px, py, pz) in enumerate(hand_made):
        columns[f"E_{slot}"][0] = energy
        columns[f"PX_{slot}"][0] = px
        columns[f"PY_{slot}"][0] = py
        columns[f"PZ_{slot}"][0] = pz
    columns["is_signal_new"][0] = 1
    path = write_pandas_fixed(tmp_path / "hand.h5", columns)

    jet = read_reference_jets(path)[0]

    assert jet["label"] == 1
    assert jet["jet_pt"] == pytest.approx(np.sqrt(70**2 + 100**2), rel=1e-6)
    assert jet["jet_eta"] == pytest.approx(np.arcsinh(40 / np.sqrt(14_900)), rel=1e-6)
    assert jet["jet_phi"] == pytest.approx(np.arctan2(100, 70), rel=1e-6)
    assert jet["jet_mass"] == pytest.approx(np.sqrt(250**2 - 14_900 - 40**2), rel=1e-6)  # sqrt(46000)
    assert ak.to_list(jet["part_pt"]) == pytest.approx([100.0, 100.0, 30.0])
    assert ak.to_list(jet["part_e"]) == pytest.approx([100.0, 100.0, 50.0])
    assert ak.to_list(jet["part_phi"]) == pytest.approx([0.0, np.pi / 2, np.pi])
    assert ak.to_list(jet["part_eta"]) == pytest.approx([0.0, 0.0, np.arcsinh(40 / 30)])


def test_constituents_match_columns(reference_file):
    path, columns = reference_file
    jets = read_reference_jets(path)

    for jet in (0, 17, 39):
        rows = expected_constituents(columns, jet)
        energy, px, py, pz = rows.T
        pt = np.hypot(px, py)
        np.testing.assert_allclose(ak.to_numpy(jets["part_pt"][jet]), pt, rtol=1e-6)
        np.testing.assert_allclose(ak.to_numpy(jets["part_e"][jet]), energy, rtol=1e-6)
        np.testing.assert_allclose(ak.to_numpy(jets["part_eta"][jet]), np.arcsinh(pz / pt), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ak.to_numpy(jets["part_phi"][jet]), np.arctan2(py, px), rtol=1e-5, atol=1e-6)

        summed = rows.sum(axis=0)
        mass = np.sqrt(summed[0] ** 2 - summed[1] ** 2 - summed[2] ** 2 - summed[3] ** 2)
        assert jets["jet_pt"][jet] == pytest.approx(np.hypot(summed[1], summed[2]), rel=1e-5)
        assert jets["jet_mass"][jet] == pytest.approx(mass, rel=1e-4)

    np.testing.assert_array_equal(ak.to_numpy(jets["label"]), columns["is_signal_new"])


def test_padding_removed(reference_file):
    path, columns = reference_file
    jets = read_reference_jets(path)

    energies = np.stack([columns[f"E_{slot}"] for slot in range(NUM_SLOTS)], axis=1)
    np.testing.assert_array_equal(ak.to_numpy(ak.num(jets["part_e"])), np.count_nonzero(energies, axis=1))
    assert ak.all(jets["part_e"] > 0)
    assert ak.all(jets["part_pt"] > 0)


def test_constituents_sorted_by_pt(reference_file):
    path, _ = reference_file
    pt = read_reference_jets(path)["part_pt"]
    assert ak.all(pt[:, 1:] <= pt[:, :-1])


def test_block_order_differs_from_axis0(tmp_path, reference_file):
    """Columns are found through block0_items, so a shuffled block gives the same jets."""
    _, columns = reference_file
    shuffled = list(np.random.default_rng(5).permutation(list(columns)))
    path = write_pandas_fixed(tmp_path / "shuffled.h5", columns, block_order=shuffled)
    with h5py.File(path) as file:
        assert file["table/block0_items"][0].decode() != "E_0"

    assert_same_jets(read_reference_jets(path), read_reference_jets(reference_file[0]))


def test_index_and_names_never_leak(tmp_path, reference_file):
    """Row index values (12345 + row) and integer columns other than the label stay out of the jets."""
    _, columns = reference_file
    columns = dict(columns)
    columns["ttv"] = np.full(40, 2, dtype=np.int64)
    shuffled = list(np.random.default_rng(6).permutation(list(columns)))
    path = write_pandas_fixed(tmp_path / "leak.h5", columns, block_order=shuffled)

    jets = read_reference_jets(path)

    index_values = np.arange(40) + INDEX_OFFSET
    for name in jets.fields:
        values = ak.to_numpy(ak.flatten(jets[name], axis=None))
        assert not np.isin(np.round(values), index_values).any(), name
    assert set(ak.to_numpy(jets["label"]).tolist()) <= {0, 1}
    assert_same_jets(jets, read_reference_jets(reference_file[0]))


def test_label_stored_as_float(tmp_path, reference_file):
    _, columns = reference_file
    columns = dict(columns)
    columns["is_signal_new"] = columns["is_signal_new"].astype(np.float32)
    path = write_pandas_fixed(tmp_path / "float_label.h5", columns)

    jets = read_reference_jets(path)

    assert jets["label"].type.content.primitive == "int32"
    np.testing.assert_array_equal(ak.to_numpy(jets["label"]), columns["is_signal_new"].astype(np.int32))


def test_fractional_label_rejected(tmp_path, reference_file):
    _, columns = reference_file
    columns = dict(columns)
    labels = columns["is_signal_new"].astype(np.float64)
    labels[7] = 0.5
    columns["is_signal_new"] = labels
    path = write_pandas_fixed(tmp_path / "half.h5", columns)

    with pytest.raises(BadValueError, match="row 7 ") as info:
        read_reference_jets(path)
    assert info.value.entry == 7
    assert info.value.branch == "is_signal_new"


def test_chunked_read_equals_one_read(reference_file):
    path, _ = reference_file
    whole = read_reference_jets(path)
    starts = [first for first, _ in iterate_reference_jets(path, step_size=7)]
    chunked = read_reference_jets(path, step_size=7)

    assert starts == [0, 7, 14, 21, 28, 35]
    assert_same_jets(chunked, whole)


def test_entry_range_selects_rows(reference_file):
    path, _ = reference_file
    whole = read_reference_jets(path)
    part = read_reference_jets(path, entry_start=10, entry_stop=25, step_size=4)

    assert len(part) == 15
    assert_same_jets(part, whole[10:25])
    with pytest.raises(ValueError, match="past the end"):
        read_reference_jets(path, entry_stop=41)


def test_reader_dispatches_hdf5(reference_file, tmp_path):
    """The jet reader reads .h5, .hdf5 and HDF5 files of any name as reference files."""
    path, _ = reference_file
    expected = read_reference_jets(path)

    assert_same_jets(read_jets(path), expected)
    assert [first for first, _ in iterate_jets(path, step_size=16)] == [0, 16, 32]
    for name in ("copy.hdf5", "copy.dat"):
        copy = tmp_path / name
        copy.write_bytes(path.read_bytes())
        assert validate_jet_file(copy) == 40
        assert_same_jets(read_jets(copy), expected)


# --- errors -------------------------------------------------------------------------------


def test_missing_file_names_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.h5"):
        validate_jet_file(tmp_path / "nowhere.h5")


def test_not_hdf5_file(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("these are not HDF5 bytes\n" * 20)

    with pytest.raises(InputFileError, match="notes.h5") as info:
        read_jets(path)
    assert "as an HDF5 file" in str(info.value)
    assert info.value.path == str(path)


def test_missing_key_lists_keys(tmp_path, reference_file):
    _, columns = reference_file
    path = write_pandas_fixed(tmp_path / "other_key.h5", columns, key="tabel")

    with pytest.raises(MissingTreeError) as info:
        validate_jet_file(path)

    message = str(info.value)
    assert "no key 'table'" in message
    assert "['tabel']" in message
    assert "did you mean 'tabel'?" in message
    assert_same_jets(read_reference_jets(path, key="tabel"), read_reference_jets(reference_file[0]))


def test_missing_columns_named(tmp_path, reference_file):
    _, columns = reference_file
    columns = {name: values for name, values in columns.items() if name not in ("PX_3", "PZ_150", "is_signal_new")}
    path = write_pandas_fixed(tmp_path / "missing.h5", columns)

    with pytest.raises(MissingBranchError) as info:
        validate_jet_file(path)

    message = str(info.value)
    assert "'PX_3', 'PZ_150', 'is_signal_new'" in message
    assert "missing.h5" in message
    assert info.value.branch == "PX_3"


def test_missing_slot_column_reported(tmp_path, reference_file):
    """A gap in the E_i columns is a missing column, not a shorter jet."""
    _, columns = reference_file
    columns = {name: values for name, values in columns.items() if name != "E_57"}
    path = write_pandas_fixed(tmp_path / "gap.h5", columns)

    with pytest.raises(MissingBranchError, match="'E_57'"):
        validate_jet_file(path)


def test_table_format_rejected_with_fix(tmp_path):
    """A store written with format='table' contains a PyTables table, which the reader rejects."""
    path = tmp_path / "table_format.h5"
    rows = np.zeros(3, dtype=[("index", "<i8"), ("values_block_0", "<f4", (4,)), ("values_block_1", "<i8", (1,))])
    with h5py.File(path, "w") as file:
        group = file.create_group("table")
        group.attrs.update(pandas_type=b"frame_table", table_type=b"appendable_frame")
        group.create_dataset("table", data=rows).attrs.update(CLASS=b"TABLE")

    with pytest.raises(InputFileError) as info:
        validate_jet_file(path)

    message = str(info.value)
    assert "'table' format" in message
    assert "format='fixed'" in message


def test_not_a_dataframe(tmp_path):
    path = tmp_path / "series.h5"
    with h5py.File(path, "w") as file:
        group = file.create_group("table")
        group.attrs["pandas_type"] = b"series"
        group.create_dataset("values", data=np.zeros(3))

    with pytest.raises(InputFileError, match="not a pandas DataFrame in fixed format.*'series'"):
        validate_jet_file(path)


def test_block_shape_mismatch(tmp_path, reference_file):
    _, columns = reference_file
    path = write_pandas_fixed(tmp_path / "bad_shape.h5", columns)
    with h5py.File(path, "a") as file:
        values = file["table/block0_values"][...]
        del file["table/block0_values"]
        file["table/block0_values"] = values[:, :-1]

    with pytest.raises(InputFileError, match="block0_values' .* has shape"):
        validate_jet_file(path)


def test_empty_store(tmp_path, reference_file):
    _, columns = reference_file
    path = write_pandas_fixed(tmp_path / "empty.h5", {name: values[:0] for name, values in columns.items()})

    with pytest.raises(EmptyTreeError, match="no rows"):
        validate_jet_file(path)


# --- conversion ---------------------------------------------------------------------------


def test_convert_round_trip(reference_file, tmp_path):
    path, columns = reference_file
    out = tmp_path / "out" / "train.root"

    summary = convert_reference_file(path, out, step_size=9, progress=False)

    assert summary.n_jets == 40
    assert summary.n_top == int(columns["is_signal_new"].sum())
    assert sorted(os.listdir(out.parent)) == ["train.root"]
    assert validate_jet_file(out) == 40
    assert_same_jets(read_jets(out), read_reference_jets(path))


def test_convert_command(reference_file, tmp_path, caplog):
    path, _ = reference_file
    out = tmp_path / "cli.root"

    with caplog.at_level(logging.INFO):
        status = data_main(["convert", str(path), str(out), "--step-size", "16", "--no-progress"])

    assert status == 0
    assert "converted 40 jets" in caplog.text
    assert_same_jets(read_jets(out), read_reference_jets(path))


def test_convert_command_bad_input(tmp_path, caplog):
    source = tmp_path / "broken.h5"
    source.write_text("not HDF5")
    out = tmp_path / "never.root"

    status = data_main(["convert", str(source), str(out), "--no-progress"])

    assert status == 1
    assert "as an HDF5 file" in caplog.text
    assert sorted(os.listdir(tmp_path)) == ["broken.h5"]


def test_convert_command_rejects_step_size(reference_file, capsys):
    with pytest.raises(SystemExit) as info:
        data_main(["convert", str(reference_file[0]), "out.root", "--step-size", "0"])
    assert info.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err


# --- training input -----------------------------------------------------------------------


def test_images_from_reference_file(reference_file, tmp_path):
    """Images from the HDF5 file equal those from its converted ROOT file."""
    path, columns = reference_file
    spec = InputSpec(height=16, width=16)
    converted = tmp_path / "converted.root"
    convert_reference_file(path, converted, progress=False)

    images, labels = load_or_build_images(path, spec, cache_dir=tmp_path / "cache", progress=False)
    root_images, root_labels = load_or_build_images(converted, spec, cache_dir=tmp_path / "cache", progress=False)

    assert images.shape == (40, 1, 16, 16)
    np.testing.assert_array_equal(labels, columns["is_signal_new"])
    np.testing.assert_allclose(images.sum(axis=(1, 2, 3)), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(images, root_images)
    np.testing.assert_array_equal(labels, root_labels)


def test_cached_images_reused(reference_file, tmp_path):
    path, _ = reference_file
    spec = InputSpec(height=16, width=16)
    first, _ = load_or_build_images(path, spec, cache_dir=tmp_path / "cache", progress=False)
    cache_files = sorted((tmp_path / "cache").iterdir())

    second, _ = load_or_build_images(path, spec, cache_dir=tmp_path / "cache", progress=False)

    assert len(cache_files) == 1
    assert sorted((tmp_path / "cache").iterdir()) == cache_files
    np.testing.assert_array_equal(first, second)


def test_datamodule_reads_reference_file(reference_file, tmp_path):
    path, _ = reference_file
    module = ImageDataModule(
        path=str(path), input_spec=InputSpec(height=16, width=16), batch_size=8, cache_dir=str(tmp_path / "cache")
    )
    module.prepare_data()
    module.setup("fit")

    sizes = {split: len(dataset) for split, dataset in module.datasets.items()}
    assert sizes == {"train": 28, "val": 6, "test": 6}
    images, labels = next(iter(module.train_dataloader()))
    assert tuple(images.shape) == (8, 1, 16, 16)
    assert set(labels.tolist()) <= {0, 1}
