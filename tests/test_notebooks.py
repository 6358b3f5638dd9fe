"""Every notebook under notebooks/ executes top to bottom on a small sample."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_notebooks_present():
    assert [path.name for path in NOTEBOOKS] == ["01_jet_images_and_training.ipynb", "02_neutrino_transfer.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_executes(path, tmp_path, monkeypatch):
    monkeypatch.setenv("JETNU_NOTEBOOK_JETS", "300")
    monkeypatch.setenv("JETNU_NOTEBOOK_EVENTS", "300")
    monkeypatch.setenv("JETNU_NOTEBOOK_EPOCHS", "1")
    monkeypatch.setenv("JETNU_NOTEBOOK_WORK", str(tmp_path))
    monkeypatch.setenv("JETNU_CONFIGS", str(REPO / "configs"))

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    client.execute()

    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    errors = [output for cell in code_cells for output in cell.outputs if output.output_type == "error"]
    assert errors == []
    figures = [output for cell in code_cells for output in cell.outputs if "image/png" in output.get("data", {})]
    assert len(figures) >= 4
