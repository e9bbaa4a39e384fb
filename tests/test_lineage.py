"""Lineage through steps: direction and depth on a 4-level pipeline; DOT, Mermaid, JSON and the terminal drawing."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

import limnos
from limnos.cli.main import app


@pytest.fixture
def pipeline(lake):  # type: ignore[no-untyped-def]
    """raw/a.txt, raw/b.txt -> parse -> parsed -> <locals>.clean -> cleaned -> features -> feats -> report -> report.txt.

    Level by level: each step takes the previous file; ``parse`` takes two raw files.
    """
    with lake.create("raw/a.txt") as w:
        w.write_text("3,1,2")
    with lake.create("raw/b.txt") as w:
        w.write_text("5,4")

    @lake.step
    def parse(a, b):  # type: ignore[no-untyped-def]
        return [int(x) for x in (a.read_text() + "," + b.read_text()).split(",")]

    @lake.step
    def clean(numbers):  # type: ignore[no-untyped-def]
        return sorted(set(json.loads(numbers.read_text())))

    @lake.step
    def features(cleaned, power: int = 2):  # type: ignore[no-untyped-def]
        with limnos.output("features/squares.json") as w:
            w.write_text(json.dumps([x ** power for x in json.loads(cleaned.read_text())]))
        return w

    @lake.step
    def report(feats):  # type: ignore[no-untyped-def]
        with limnos.output("reports/report.txt") as w:
            w.write_text(f"sum={sum(json.loads(feats.read_text()))}")
        return w

    raw_a, raw_b = lake.get("raw/a.txt"), lake.get("raw/b.txt")
    parsed = parse.call(raw_a, raw_b).files[0]
    cleaned = clean.call(parsed).files[0]
    feats = features(cleaned)
    out = report(feats)
    return {"raw_a": raw_a, "raw_b": raw_b, "parsed": parsed, "cleaned": cleaned, "feats": feats, "report": out,
            "steps": {"parse": parse, "clean": clean, "features": features, "report": report}}


def names(graph: limnos.ops.lineage.Lineage) -> set[str]:  # type: ignore[name-defined]
    return {n["name"] for n in graph.files()}


def step_functions(graph) -> set[str]:  # type: ignore[no-untyped-def]
    return {n["function"].rsplit(".", 1)[-1] for n in graph.steps()}


def test_direction_and_depth_on_four_levels(lake, pipeline):
    p = pipeline
    assert p["report"].read_text() == "sum=55"
    up = lake.lineage(p["report"])
    assert names(up) == {"raw/a.txt", "raw/b.txt", p["parsed"].name, p["cleaned"].name, "features/squares.json",
                         "reports/report.txt"}
    assert step_functions(up) == {"parse", "clean", "features", "report"}
    assert len(up.edges) == 9  # a, b -> parse -> parsed -> clean -> cleaned -> features -> feats -> report -> out
    step_report = next(n for n in up.steps() if n["function"].endswith("report"))
    key = f"s:{step_report['id']}"
    assert up.parents(up.root) == [key] and up.parents(key) == [f"f:{p['feats'].id}"]
    assert step_report["source_file"].endswith("test_lineage.py") and step_report["status"] == "ok"

    for depth, expected in ((0, {"reports/report.txt"}),
                            (1, {"reports/report.txt", "features/squares.json"}),
                            (2, {"reports/report.txt", "features/squares.json", p["cleaned"].name}),
                            (4, names(up))):
        g = lake.lineage(p["report"], depth=depth)
        assert names(g) == expected, depth
        assert all(n["type"] != "run" for n in g.nodes.values())
    assert step_functions(lake.lineage(p["report"], depth=1)) == {"report"}
    assert step_functions(lake.lineage(p["report"], depth=2)) == {"report", "features"}

    down = lake.lineage(p["raw_b"], direction="down")
    assert names(down) == names(up) - {"raw/a.txt"}  # a is a co-input, not downstream of b
    assert step_functions(down) == {"parse", "clean", "features", "report"}
    assert names(lake.lineage(p["raw_b"], "down", depth=2)) == {"raw/b.txt", p["parsed"].name, p["cleaned"].name}

    both = lake.lineage(p["cleaned"], direction="both", depth=1)
    assert names(both) == {p["parsed"].name, p["cleaned"].name, "features/squares.json"}
    assert step_functions(both) == {"clean", "features"}

    assert [f.name for f in lake.downstream(p["raw_a"])] == [p["parsed"].name, p["cleaned"].name,
                                                             "features/squares.json", "reports/report.txt"]
    assert [f.name for f in lake.downstream("raw/a.txt", depth=1)] == [p["parsed"].name]
    assert lake.downstream(p["report"]) == []
    with pytest.raises(limnos.InvalidRef):
        lake.lineage(p["report"], direction="sideways")
    with pytest.raises(limnos.InvalidRef):
        lake.lineage(p["report"], depth=-1)


def test_step_without_input_files_still_shows(lake):
    @lake.step
    def constant(n: int):  # type: ignore[no-untyped-def]
        return list(range(n))

    @lake.step
    def total(numbers):  # type: ignore[no-untyped-def]
        return sum(json.loads(numbers.read_text()))

    made = constant.call(3).files[0]
    summed = total.call(made).files[0]
    g = lake.lineage(summed)
    assert step_functions(g) == {"constant", "total"}
    const = next(k for k, n in g.nodes.items() if n["type"] == "step" and n["function"].endswith("constant"))
    assert g.children(const) == [f"f:{made.id}"] and g.parents(const) == []
    assert g.nodes[const]["params"] == {"n": 3}


def test_dot_mermaid_json(lake, pipeline, tmp_path):
    graph = lake.lineage(pipeline["report"])
    dot = graph.to_dot()
    lines = dot.strip().splitlines()
    assert lines[0] == "digraph lineage {" and lines[-1] == "}"
    assert sum("->" in line for line in lines) == len(graph.edges) == 9
    assert dot.count('style="rounded,filled"') == 4  # the four step boxes
    assert "<locals>" in dot  # qualnames of steps defined in a function survive quoting
    if shutil.which("dot"):
        svg = subprocess.run(["dot", "-Tsvg"], input=dot.encode(), capture_output=True, timeout=60)
        assert svg.returncode == 0, svg.stderr.decode()
        assert b"<svg" in svg.stdout and b"reports/report.txt@1" in svg.stdout
    else:  # structural checks: every edge names declared nodes
        declared = set(re.findall(r'^  ("[^"]+") \[', dot, re.M))
        for s, d in re.findall(r'^  ("[^"]+") -> ("[^"]+");$', dot, re.M):
            assert s in declared and d in declared

    mermaid = graph.to_mermaid().strip().splitlines()
    assert mermaid[0] == "flowchart LR"
    nodes = {m.group(1) for line in mermaid if (m := re.match(r"^  (n\d+)[\[({]", line))}
    edges = [re.match(r"^  (n\d+) --> (n\d+)$", line) for line in mermaid if "-->" in line]
    assert len(nodes) == len(graph.nodes) and len(edges) == 9
    assert all(e and e.group(1) in nodes and e.group(2) in nodes for e in edges)
    hexagons = [line for line in mermaid if re.match(r'^  n\d+\{\{".*"\}\}$', line)]
    assert len(hexagons) == 4 and all("<" not in line for line in hexagons)  # <locals> is escaped
    if shutil.which("mmdc"):  # the Mermaid CLI, when a machine has it
        src = tmp_path / "g.mmd"
        src.write_text("\n".join(mermaid))
        done = subprocess.run(["mmdc", "-i", str(src), "-o", str(tmp_path / "g.svg")], capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr.decode()

    data = json.loads(graph.to_json())
    assert data["root"] == f"f:{pipeline['report'].id}"
    kinds = sorted(n["type"] for n in data["nodes"])
    assert kinds.count("step") == 4 and kinds.count("file") == 6
    ids = {("f:" if n["type"] == "file" else "s:") + n["id"] for n in data["nodes"]}
    assert all(e["from"] in ids and e["to"] in ids for e in data["edges"])


def test_permalink_in_dot_and_mermaid(lake):
    graph = limnos.ops.lineage.Lineage(root="f:X")
    graph.nodes["f:X"] = {"type": "file", "id": "X", "name": "out.txt", "version": 1}
    graph.nodes["s:S"] = {"type": "step", "id": "S", "function": 'm.f"q', "source_file": "/p/m.py", "source_line": 3,
                          "permalink": "https://github.com/a/b/blob/c/m.py#L3-L9"}
    graph._edge("s:S", "f:X")
    dot = graph.to_dot()
    assert 'URL="https://github.com/a/b/blob/c/m.py#L3-L9"' in dot and 'step m.f\\"q\\nm.py:3' in dot
    if shutil.which("dot"):
        assert subprocess.run(["dot", "-Tsvg"], input=dot.encode(), capture_output=True, timeout=60).returncode == 0
    mermaid = graph.to_mermaid()
    assert 'click n1 href "https://github.com/a/b/blob/c/m.py#L3-L9" _blank' in mermaid
    assert 'n1{{"step m.f#quot;q"}}' in mermaid


def cli(*args: str, lake: limnos.Lake) -> str:
    result = CliRunner().invoke(app, list(args), env={"LIMNOS_LAKE": lake.path, "COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_cli_draws_step_boxes(lake, pipeline):
    p = pipeline
    text = cli("lineage", "reports/report.txt", lake=lake)
    for fragment in ("input files", "created by", "output", "features/squares.json@1", "reports/report.txt@1",
                     "step ", ".report", "code test_lineage.py:", "step code: ", "test_lineage.py:",
                     "lineage (upstream)", "raw/a.txt@1", "──▶"):
        assert fragment in text, fragment
    shallow = cli("lineage", "reports/report.txt", "--depth", "1", lake=lake)
    assert "features/squares.json@1" in shallow and "raw/a.txt" not in shallow
    down = cli("lineage", "raw/a.txt", "--down", lake=lake)
    assert "used by" in down and p["parsed"].name in down and "reports/report.txt@1" in down and ".parse" in down
    dot = cli("lineage", "reports/report.txt", "--format", "dot", lake=lake)
    assert dot.startswith("digraph lineage {") and dot.count("->") == 9
    mermaid = cli("lineage", "raw/a.txt", "--down", "--depth", "2", "-f", "mermaid", lake=lake)
    assert mermaid.count("-->") == 4  # a -> parse -> parsed -> clean -> cleaned
    data = json.loads(cli("lineage", "reports/report.txt", "-f", "json", lake=lake))
    assert sum(n["type"] == "step" for n in data["nodes"]) == 4
    steps = json.loads(cli("steps", "--json", lake=lake))
    assert [s["function"].rsplit(".", 1)[-1] for s in steps] == ["parse", "clean", "features", "report"]
    assert steps[0]["inputs"][0]["name"] == "raw/a.txt" and steps[0]["outputs"][0]["file_id"] == p["parsed"].id
    table = cli("steps", "--function", "features", lake=lake)
    assert "features" in table and "power=2" in table and ".parse" not in table
    assert len(json.loads(cli("steps", "--limit", "2", "--json", lake=lake))) == 2
    info = cli("info", "features/squares.json", lake=lake)
    assert "made by step" in info and "cleaned (param)" not in info and "(param cleaned)" in info
