"""A real notebook, run by a real Jupyter kernel: the displays and progress bars a data scientist sees.

nbclient starts an ipykernel from this venv (the kernel inherits the test's
environment, so it imports this limnos), runs each cell in order, and keeps
every output as Jupyter would save it. The test then reads the ``text/html``
of each display: the File, the Result, the datasource's QueryResult with its
thumbnails, the Lineage drawing, and the progress bar that ``lake.add`` of a
folder drew (ipykernel has no terminal, so before notebook support there was
none). Hostile names are in the data, as in tests/test_notebook_html.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat", reason="pip install nbformat nbclient ipykernel (the dev extra has them)")
nbclient = pytest.importorskip("nbclient", reason="pip install nbformat nbclient ipykernel (the dev extra has them)")
pytest.importorskip("ipykernel", reason="pip install ipykernel (the dev extra has it)")

HOSTILE = '<script>alert("x")</script>'

CELLS = [
    # 0: a lake and a folder of small images, one with a hostile name
    """
import limnos
from PIL import Image
folder = LAKE_DIR + "/incoming"
import os
os.makedirs(folder)
for i in range(12):
    Image.new("RGB", (40, 20), (i * 20, 100, 200)).save(f"{folder}/{i}.png")
open(folder + "/" + HOSTILE.replace("/", "_") + ".txt", "w").write("x")
lake = limnos.init(LAKE_DIR + "/lake")
added = lake.add(folder, name="img")
""",
    # 1: a File
    "f = lake.get('img/3.png'); lake.set_metadata(f.ref, {'note': HOSTILE}); lake.get('img/3.png')",
    # 2: a query Result
    "lake.files.all()",
    # 3: a datasource QueryResult
    "ds = lake.datasource('pics', folder, scan=True); ds.all()",
    # 4: lineage: a file made from two others
    """
lake.get('img/1.png').read_bytes(); lake.get('img/2.png').read_bytes()
with lake.create('derived/pair.txt') as w:
    w.write_text('1+2')
graph = lake.lineage('derived/pair.txt')
print(repr(graph))
graph
""",
]


def run_notebook(tmp_path: Path) -> Any:
    nb = nbformat.v4.new_notebook()
    setup = f"LAKE_DIR = {str(tmp_path)!r}\nHOSTILE = {HOSTILE!r}\n"
    nb.cells = [nbformat.v4.new_code_cell(setup + CELLS[0])] + [nbformat.v4.new_code_cell(c) for c in CELLS[1:]]
    env_before = os.environ.pop("LIMNOS_PROGRESS", None)  # bars on: the kernel inherits this environment
    try:
        from jupyter_client.manager import KernelManager

        # ipc: the kernel's sockets are files in tmp_path, no TCP port (loopback or not) is opened
        km = KernelManager(kernel_name="python3", transport="ipc", ip=str(tmp_path / "kernel"))
        client = nbclient.NotebookClient(nb, km=km, timeout=300, resources={"metadata": {"path": str(tmp_path)}})
        client.execute()
    finally:
        if env_before is not None:
            os.environ["LIMNOS_PROGRESS"] = env_before
    return nb


def html_of(cell: Any, output_type: str = "execute_result") -> list[str]:
    return [o["data"]["text/html"] for o in cell.outputs if o["output_type"] == output_type and "text/html" in o.get("data", {})]


def test_a_notebook_shows_files_results_lineage_and_progress(tmp_path: Path) -> None:
    nb = run_notebook(tmp_path)
    for cell in nb.cells:
        errors = [o for o in cell.outputs if o["output_type"] == "error"]
        assert not errors, errors[0]["traceback"] if errors else ""

    # lake.add of 13 files drew a bar: one display, updated in place to its final line.
    (bar,) = html_of(nb.cells[0], "display_data")
    assert "limnos-progress" in bar
    assert "done in" in bar and "13 files of 13 files" in bar and "<progress" not in bar

    (file_html,) = html_of(nb.cells[1])
    assert "img/3.png@1" in file_html and "provenance" in file_html and "metadata (1)" in file_html
    assert "data:image/png;base64," in file_html  # its thumbnail
    assert "&lt;script&gt;alert" in file_html

    (result_html,) = html_of(nb.cells[2])
    assert "13 files" in result_html and result_html.count("data:image/png;base64,") == 12

    (ds_html,) = html_of(nb.cells[3])
    assert "QueryResult of pics" in ds_html and ds_html.count("data:image/png;base64,") == 12

    (lineage_html,) = html_of(nb.cells[4])
    assert "derived/pair.txt@1" in lineage_html and ("<svg" in lineage_html or "flowchart LR" in lineage_html)
    printed = "".join(o.get("text", "") for o in nb.cells[4].outputs if o["output_type"] == "stream")
    # lake.get marks a file read, so img/3.png (cell 1) is an input too, beside the two read here.
    assert printed.startswith("<Lineage of derived/pair.txt@1: 4 files, 1 run, 4 edges>")
    assert "img/1.png@1 -> notebook session" in printed and "notebook session -> derived/pair.txt@1" in printed

    for cell in nb.cells:
        for markup in html_of(cell) + html_of(cell, "display_data"):
            assert HOSTILE not in markup  # the hostile name only ever arrives escaped
