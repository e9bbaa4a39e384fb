"""Lineage: the graph input file -> run -> output file, walked up or down.

Nodes are files (``f:<id>``) and runs (``r:<id>``). An edge goes from an
input file to the run that read it, and from a run to each file it wrote.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import InvalidRef

if TYPE_CHECKING:
    from .files import File
    from .lake import Lake

DIRECTIONS = ("up", "down", "both")


@dataclass
class Lineage:
    root: str
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)

    def _edge(self, src: str, dst: str) -> None:
        if (src, dst) not in self._seen:
            self._seen.add((src, dst))
            self.edges.append((src, dst))

    def __post_init__(self) -> None:
        self._seen: set[tuple[str, str]] = set()

    def files(self) -> list[dict[str, Any]]:
        return [n for n in self.nodes.values() if n["type"] == "file"]

    def parents(self, node: str) -> list[str]:
        return [s for s, d in self.edges if d == node]

    def children(self, node: str) -> list[str]:
        return [d for s, d in self.edges if s == node]

    def to_json(self) -> str:
        return json.dumps({"root": self.root, "nodes": list(self.nodes.values()),
                           "edges": [{"from": s, "to": d} for s, d in self.edges]}, indent=2, default=str)

    def _label(self, node: dict[str, Any]) -> str:
        if node["type"] == "file":
            return f"{node['name']}@{node['version']}"
        return node.get("label") or f"run {node['id'][-8:]}"

    def to_dot(self) -> str:
        lines = ["digraph lineage {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
        for key, node in self.nodes.items():
            shape = "box" if node["type"] == "file" else "ellipse"
            style = ', style="bold"' if key == self.root else ""
            lines.append(f"  {json.dumps(key)} [label={json.dumps(self._label(node))}, shape={shape}{style}];")
        for s, d in self.edges:
            lines.append(f"  {json.dumps(s)} -> {json.dumps(d)};")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def to_mermaid(self) -> str:
        ids = {key: f"n{i}" for i, key in enumerate(self.nodes)}
        lines = ["flowchart LR"]
        for key, node in self.nodes.items():
            label = self._label(node).replace('"', "'")
            lines.append(f'  {ids[key]}["{label}"]' if node["type"] == "file" else f'  {ids[key]}(["{label}"])')
        for s, d in self.edges:
            lines.append(f"  {ids[s]} --> {ids[d]}")
        return "\n".join(lines) + "\n"


def _file_node(f: "File") -> dict[str, Any]:
    return {"type": "file", "id": f.id, "name": f.name, "version": f.version, "hash": f.hash,
            "size": f.size, "created_at": f.created_at.isoformat(), "user": f.user}


def _run_node(lake: "Lake", run_id: str) -> dict[str, Any]:
    run = lake.catalog.run(run_id) or {}
    argv = run.get("argv") or []
    label = run.get("name") or (" ".join(str(a) for a in argv[:3]) if argv else None)
    return {"type": "run", "id": run_id, "label": label, "argv": argv, "user": run.get("user"), "host": run.get("host"),
            "started_at": str(run.get("started_at")), "git_commit": run.get("git_commit"),
            "git_dirty": run.get("git_dirty"), "git_remote": run.get("git_remote"),
            "limnos_version": run.get("limnos_version")}


def build_lineage(lake: "Lake", root: "File", direction: str = "up", depth: int | None = None) -> Lineage:
    if direction not in DIRECTIONS:
        raise InvalidRef(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    if depth is not None and depth < 0:
        raise InvalidRef("depth must be >= 0 (or None for the whole graph)")
    graph = Lineage(root=f"f:{root.id}")
    graph.nodes[graph.root] = _file_node(root)
    if direction in ("up", "both"):
        _walk(lake, graph, [root], depth, up=True)
    if direction in ("down", "both"):
        _walk(lake, graph, [root], depth, up=False)
    return graph


def _walk(lake: "Lake", graph: Lineage, start: Iterable["File"], depth: int | None, up: bool) -> None:
    from .files import File

    frontier = list(start)
    seen = {f.id for f in frontier}
    level = 0
    while frontier and (depth is None or level < depth):
        ids = [f.id for f in frontier]
        links = lake.catalog.inputs_of(ids) if up else lake.catalog.outputs_of(ids)
        other_ids = sorted({i for lst in links.values() for i in lst})
        rows = lake.catalog.files_by_ids(other_ids)
        nxt = []
        for f in frontier:
            for other_id in links[f.id]:
                if other_id not in rows:
                    continue
                other = File(lake, rows[other_id])
                graph.nodes.setdefault(f"f:{other.id}", _file_node(other))
                src, dst = (other, f) if up else (f, other)
                if dst.run_id:
                    run_key = f"r:{dst.run_id}"
                    if run_key not in graph.nodes:
                        graph.nodes[run_key] = _run_node(lake, dst.run_id)
                    graph._edge(f"f:{src.id}", run_key)
                    graph._edge(run_key, f"f:{dst.id}")
                else:
                    graph._edge(f"f:{src.id}", f"f:{dst.id}")
                if other.id not in seen:
                    seen.add(other.id)
                    nxt.append(other)
        frontier = nxt
        level += 1
    # The root's own run, even with no inputs, says who made it and how.
    for f in start:
        if up and f.run_id and f"r:{f.run_id}" not in graph.nodes:
            graph.nodes[f"r:{f.run_id}"] = _run_node(lake, f.run_id)
            graph._edge(f"r:{f.run_id}", f"f:{f.id}")
