"""``limnos demo``: build a small sample lake in a temporary folder and tour it.

The tour only uses the public library API, the same calls a user would type,
and shows the command-line equivalent of each step. It needs no network and
takes a second or two: a few tiny CSV files, one derived parquet file made in
a named run (so it has lineage), metadata, a query, two versions of a report
and the lineage drawing of the report; then a cached step, and a datasource of
small generated images with labels, so ``limnos ui`` has something on every page.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import shutil
import struct
import sys
import tempfile
import time
import zlib
from typing import TYPE_CHECKING

import limnos
from limnos.errors import require_extra

from . import render
from .app import app

if TYPE_CHECKING:
    from rich.console import Console

MONTHS = ("2024-01", "2024-02", "2024-03")
STORES = ("north", "south", "east", "west")


def _step(console: Console, number: int, title: str, code: str, cli: str | None = None) -> None:
    from rich.syntax import Syntax  # pygments: paid by the demo only, not by every command
    from rich.text import Text

    console.print()
    console.rule(Text(f"{number}. {title}", style="bold"), align="left")
    console.print(Syntax(code.strip(), "python", theme="ansi_dark", background_color="default"))
    if cli:
        console.print(Text(f"  command line: {cli}", style="dim"), soft_wrap=True)


def _make_csvs(folder: str) -> list[str]:
    """Three small monthly sales tables, with a few missing values to clean."""
    pd = require_extra("pandas", "pandas", purpose="limnos demo")
    np = require_extra("numpy", "pandas", purpose="limnos demo")

    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(7)
    paths = []
    for month in MONTHS:
        frame = pd.DataFrame({
            "day": np.arange(1, 21),
            "store": rng.choice(STORES, 20),
            "sales": rng.integers(50, 500, 20).astype(float),
        })
        frame.loc[rng.choice(20, 2, replace=False), "sales"] = np.nan
        frame.insert(0, "month", month)
        path = os.path.join(folder, f"sales_{month}.csv")
        frame.to_csv(path, index=False)
        paths.append(path)
    return paths


SHAPES = ("circle", "square", "triangle")
COLOURS = {"red": (220, 60, 60), "green": (40, 160, 90), "blue": (40, 110, 210), "orange": (240, 150, 30)}


def _png(pixels: bytes, width: int, height: int) -> bytes:
    """RGB bytes as a PNG file (zlib only: the demo needs no image library)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + pixels[y * width * 3:(y + 1) * width * 3] for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def _make_images(folder: str, size: int = 96) -> dict[str, dict[str, object]]:
    """A small labelled image set: each shape in each colour, big and small; path -> its labels."""
    import numpy as np

    os.makedirs(folder, exist_ok=True)
    y, x = np.mgrid[0:size, 0:size]
    labels: dict[str, dict[str, object]] = {}
    for shape in SHAPES:
        for colour, rgb in COLOURS.items():
            for scale in (0.25, 0.4):
                r, c = size * scale, size / 2
                if shape == "circle":
                    mask = (x - c) ** 2 + (y - c) ** 2 <= r ** 2
                elif shape == "square":
                    mask = (abs(x - c) <= r) & (abs(y - c) <= r)
                else:
                    mask = (y >= c - r) & (y <= c + r) & (abs(x - c) <= (y - (c - r)) / 2)
                image = np.full((size, size, 3), 246, dtype=np.uint8)
                image[mask] = rgb
                name = f"{shape}_{colour}_{'big' if scale > 0.3 else 'small'}.png"
                with open(os.path.join(folder, name), "wb") as f:
                    f.write(_png(image.tobytes(), size, size))
                labels[name] = {"shape": shape, "colour": colour, "big": scale > 0.3, "area": int(mask.sum())}
    return labels


def _extras(console: Console, lake: limnos.Lake, base: str, quoted: str) -> None:
    """Steps 8 and 9 of the tour: a cached step, and a labelled image datasource (for ``limnos ui``'s gallery)."""
    import pandas as pd
    from rich.text import Text

    _step(console, 8, "A step: a function whose outputs are recorded, and never computed twice",
          """
@lake.step
def store_totals(clean: limnos.File) -> pd.DataFrame:
    return pd.read_parquet(clean.local_path()).groupby("store", as_index=False)["sales"].sum()

store_totals(lake.get("clean/sales.parquet"))   # runs; a second call returns the recorded output
""", f"limnos --lake {quoted} steps")

    def store_totals(clean: limnos.File) -> pd.DataFrame:
        return pd.read_parquet(clean.local_path()).groupby("store", as_index=False)["sales"].sum()

    totals = lake.step(store_totals)
    totals(lake.get("clean/sales.parquet"))
    again = totals.call(lake.get("clean/sales.parquet"))
    console.print(Text(f"  recorded {len(lake.steps())} step execution; the second call was a "
                       f"{'hit' if again.hit else 'miss'}", style="green"), soft_wrap=True)

    _step(console, 9, "A datasource: a typed metadata table over files, with queries and saved datasets",
          """
lake.add("data/shapes", name="images/shapes")
ds = lake.datasource("shapes", "images/shapes")
with ds.metadata_context() as ctx:
    ctx.update_metadata("circle_red_big.png", {"shape": "circle", "colour": "red", "big": True})
ds[ds["colour"] == "blue"].save_dataset("blue-shapes")
""", f"limnos --lake {quoted} ds query shapes 'colour == \"blue\"'")
    labels = _make_images(os.path.join(base, "data", "shapes"))
    with lake.run(name="import shapes"):  # its own run: the files read earlier in the tour are not its inputs
        lake.add(os.path.join(base, "data", "shapes"), name="images/shapes", metadata={"project": "demo", "stage": "raw"})
    ds = lake.datasource("shapes", "images/shapes", scan=True)
    with ds.metadata_context() as ctx:
        for path, fields in labels.items():
            ctx.update_metadata(path, fields)
    ds[ds["colour"] == "blue"].save_dataset("blue-shapes")
    console.print(Text(f"  datasource shapes: {ds.count()} images; {ds[ds['colour'] == 'blue'].count()} blue, "
                       "saved as dataset blue-shapes", style="green"), soft_wrap=True)


@app.command(epilog="Example: limnos demo")
def demo() -> None:
    """Build a sample lake in a temporary folder and tour limnos on it."""
    run_demo(render.out_console())


def command_name() -> str:
    """How to run this very ``limnos`` from a shell: ``limnos`` when that is on PATH, else its full path.

    ``make demo`` runs ``.venv/bin/limnos`` without activating the venv, so a
    bare ``limnos`` in the demo's explore lines would not be found.
    """
    argv0 = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if os.path.basename(argv0) != "limnos" or not os.path.isfile(argv0):
        return f"{shlex.quote(sys.executable)} -m limnos" if shutil.which("limnos") is None else "limnos"
    found = shutil.which("limnos")
    return "limnos" if found and os.path.realpath(found) == os.path.realpath(argv0) else shlex.quote(argv0)


def run_demo(console: Console) -> str:
    """Build the sample lake and tour it on ``console``; return the lake's path."""
    pd = require_extra("pandas", "pandas", purpose="limnos demo")
    from rich.text import Text

    started = time.perf_counter()
    if not console.is_terminal:
        console.width = min(console.width, 120)  # piped: wide enough for the tables, not for the rules
    base = tempfile.mkdtemp(prefix="limnos-demo-")
    lake_path = os.path.join(base, "lake")
    data = os.path.join(base, "data", "sales")
    quoted = shlex.quote(lake_path)
    console.print(Text.assemble(("limnos demo", "bold cyan"), f" — a sample lake in {base}"), soft_wrap=True)

    _step(console, 1, "Create a lake (a SQLite catalog + a local content-addressed store)",
          f"lake = limnos.init({lake_path!r})", f"limnos init {quoted}")
    lake = limnos.init(lake_path)
    try:
        _step(console, 2, "Add a folder of CSV files, with metadata",
              'files = lake.add("data/sales", name="raw/sales", metadata={"project": "demo", "stage": "raw"})',
              f"limnos --lake {quoted} add data/sales --name raw/sales --meta project=demo --meta stage=raw")
        _make_csvs(data)
        files = lake.add(data, name="raw/sales", metadata={"project": "demo", "stage": "raw"})
        assert isinstance(files, list)
        console.print(render.files_table(files, local=True))

        _step(console, 3, "Make a derived file in a run: the files it reads become its inputs",
              """
with lake.run(name="clean"):
    frames = [pd.read_csv(lake.get(f.name).open()) for f in files]
    with lake.create("clean/sales.parquet", metadata={"project": "demo", "stage": "clean"}) as w:
        pd.concat(frames).dropna().to_parquet(w.path)
""")
        with lake.run(name="clean"):
            frames = []
            for f in files:
                with lake.get(f.name).open() as stream:
                    frames.append(pd.read_csv(stream))
            clean = pd.concat(frames, ignore_index=True).dropna()
            with lake.create("clean/sales.parquet",
                             metadata={"project": "demo", "stage": "clean", "rows": len(clean)}) as w:
                clean.to_parquet(w.path, index=False)
        cleaned = w.file
        assert cleaned is not None
        console.print(Text(f"  created {cleaned.ref} ({render.size(cleaned.size)}, {len(clean)} rows) "
                           f"from {len(cleaned.inputs)} inputs", style="green"), soft_wrap=True)

        _step(console, 4, "Set typed metadata (every change is kept with its time)",
              'lake.set_metadata("clean/sales.parquet", {"reviewed": True, "score": 0.97, "reviewed_at": now})',
              f"limnos --lake {quoted} meta set clean/sales.parquet reviewed=true score=0.97")
        cleaned = lake.set_metadata(cleaned, {"reviewed": True, "score": 0.97,
                                              "reviewed_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0)})
        for key, value in cleaned.metadata.items():
            console.print(Text(f"  {key} = {render.value_text(value)}  ({render.type_name(value)})"), soft_wrap=True)

        _step(console, 5, "Write a report twice: one name, two versions",
              """
for top in (2, 3):
    with lake.run(name="report", config={"top": top}):
        sales = pd.read_parquet(lake.get("clean/sales.parquet").local_path())
        with lake.create("reports/top_stores.csv", metadata={"project": "demo", "top": top}) as w:
            sales.groupby("store").sales.sum().nlargest(top).to_csv(w.path)
""", f"limnos --lake {quoted} history reports/top_stores.csv")
        for top in (2, 3):
            with lake.run(name="report", config={"top": top}):
                sales = pd.read_parquet(lake.get("clean/sales.parquet").local_path())
                with lake.create("reports/top_stores.csv",
                                 metadata={"project": "demo", "stage": "report", "top": top}) as w:
                    sales.groupby("store")["sales"].sum().nlargest(top).to_csv(w.path)
        console.print(render.files_table(lake.history("reports/top_stores.csv")))

        _step(console, 6, "Query the metadata: a pandas DataFrame of matching files",
              'lake.query(project="demo", latest=True).dataframe',
              f"limnos --lake {quoted} query project=demo --latest")
        frame = lake.query(project="demo", latest=True).dataframe
        columns = [c for c in ("name", "version", "size", "stage", "rows", "top", "reviewed") if c in frame.columns]
        shown = frame[columns].convert_dtypes()
        shown = shown.astype(object).where(shown.notna(), "")
        console.print(Text(shown.to_string(index=False)), soft_wrap=True)

        _step(console, 7, "Draw the lineage of the report: raw files -> clean -> report",
              'lake.lineage("reports/top_stores.csv")',
              f"limnos --lake {quoted} lineage reports/top_stores.csv")
        graph = lake.lineage("reports/top_stores.csv")
        render.print_all(console, render.lineage_renderables(lake, graph))
        _extras(console, lake, base, quoted)
    finally:
        lake.close()

    console.print()
    console.rule(Text("Explore it yourself", style="bold"), align="left")
    console.print(Text.assemble("The lake is at ", (lake_path, "bold"), f"  (built in {time.perf_counter() - started:.1f} s)"),
                  soft_wrap=True)
    exe = command_name()
    for command in (f"{exe} --lake {quoted} ls",
                    f"{exe} --lake {quoted} info clean/sales.parquet",
                    f"{exe} --lake {quoted} lineage raw/sales/sales_2024-01.csv --down",
                    f"{exe} --lake {quoted} ui --open"):
        console.print(Text(f"  {command}", style="cyan"), soft_wrap=True)
    console.print(Text(f"Remove it with: rm -rf {shlex.quote(base)}", style="dim"), soft_wrap=True)
    return lake_path
