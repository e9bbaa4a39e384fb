"""Lineage: the graph input file -> step or run -> output file, walked up or down.

Nodes are files (``f:<id>``), step executions (``s:<id>``) and runs
(``r:<id>``); a file deleted since (``rm``) stays in the graph with
``removed: true``. A file made by a ``@step`` hangs below the step node (its
function and a link to its code); any other file below the run (the process)
that wrote it. An edge goes from an input file to that step or run, and from
the step or run to each file it made. ``depth`` counts file-to-file hops.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.files import File
from ..errors import InvalidRef

if TYPE_CHECKING:
    from ..core.base import LakeBase

#: the values ``direction`` takes: ``up`` (made from), ``down`` (made into), ``both``
DIRECTIONS = ("up", "down", "both")


@dataclass
class Lineage:
    """A lineage graph: files, the steps and runs between them, and the edges that link them.

    Attributes:
        root: the key of the file the graph was built around.
        nodes: key -> node. A key is ``f:<file id>``, ``s:<step id>`` or ``r:<run id>``;
            a node is a JSON-ready dict whose ``type`` is ``file``, ``step`` or ``run``.
            A file node's ``removed`` is True for a file deleted since (its lineage stays).
        edges: ``(from, to)`` key pairs, from an input to what made something, and
            from the maker to what it made.
    """

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
        """The file nodes (the root among them)."""
        return [n for n in self.nodes.values() if n["type"] == "file"]

    def steps(self) -> list[dict[str, Any]]:
        """The ``@step`` execution nodes."""
        return [n for n in self.nodes.values() if n["type"] == "step"]

    def parents(self, node: str) -> list[str]:
        """The keys with an edge into ``node``."""
        return [s for s, d in self.edges if d == node]

    def children(self, node: str) -> list[str]:
        """The keys ``node`` has an edge to."""
        return [d for s, d in self.edges if s == node]

    def to_json(self) -> str:
        """The graph as indented JSON: ``root``, ``nodes`` (a list) and ``edges`` (``from``/``to`` pairs)."""
        return json.dumps({"root": self.root, "nodes": list(self.nodes.values()),
                           "edges": [{"from": s, "to": d} for s, d in self.edges]}, indent=2, default=str)

    def _label(self, node: dict[str, Any]) -> str:
        if node["type"] == "file":
            return f"{node['name']}@{node['version']}" + (" (removed)" if node.get("removed") else "")
        if node["type"] == "step":
            return f"step {node['function']}"
        return node.get("label") or f"run {node['id'][-8:]}"

    def to_dot(self) -> str:
        """Graphviz DOT; a step node links to its code (clickable in SVG)."""
        lines = ["digraph lineage {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
        for key, node in self.nodes.items():
            style = ', style="bold"' if key == self.root else ""
            if node["type"] == "step":
                where = _code_short(node)
                label = self._label(node) + (f"\n{where}" if where else "")
                attrs = 'shape=box, style="rounded,filled", fillcolor="#ede7f6"'
                link = _safe_link(node.get("permalink"))
                if link:
                    attrs += f", URL={_dot_str(link)}, tooltip={_dot_str(link)}"
                lines.append(f"  {_dot_str(key)} [label={_dot_str(label)}, {attrs}];")
                continue
            shape = "box" if node["type"] == "file" else "ellipse"
            lines.append(f"  {_dot_str(key)} [label={_dot_str(self._label(node))}, shape={shape}{style}];")
        for s, d in self.edges:
            lines.append(f"  {_dot_str(s)} -> {_dot_str(d)};")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def to_mermaid(self) -> str:
        """A Mermaid flowchart: files as boxes, runs as stadiums, steps as hexagons linked to their code."""
        ids = {key: f"n{i}" for i, key in enumerate(self.nodes)}
        lines = ["flowchart LR"]
        links = []
        for key, node in self.nodes.items():
            label = _mermaid_text(self._label(node))
            if node["type"] == "file":
                lines.append(f'  {ids[key]}["{label}"]')
            elif node["type"] == "step":
                lines.append(f'  {ids[key]}{{{{"{label}"}}}}')
                link = _safe_link(node.get("permalink"))
                if link:
                    links.append(f'  click {ids[key]} href "{_mermaid_text(link)}" _blank')
            else:
                lines.append(f'  {ids[key]}(["{label}"])')
        for s, d in self.edges:
            lines.append(f"  {ids[s]} --> {ids[d]}")
        return "\n".join(lines + links) + "\n"


    def __repr__(self) -> str:
        """One summary line, then each edge as ``from -> to`` (the first 20)."""
        counts = {kind: sum(1 for n in self.nodes.values() if n["type"] == kind) for kind in ("file", "step", "run")}
        root = self.nodes.get(self.root)
        parts = [f"{n} {kind}{'' if n == 1 else 's'}" for kind, n in counts.items() if n]
        lines = [f"<Lineage of {self._label(root) if root else self.root}: {', '.join(parts)}, "
                 f"{len(self.edges)} edge{'' if len(self.edges) == 1 else 's'}>"]
        for src, dst in self.edges[:_REPR_EDGES]:
            lines.append(f"  {self._label(self.nodes[src])} -> {self._label(self.nodes[dst])}")
        if len(self.edges) > _REPR_EDGES:
            lines.append(f"  ... {len(self.edges) - _REPR_EDGES} more edges")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """The graph drawn in a notebook: SVG from graphviz's ``dot`` when it is on PATH, else a Mermaid diagram."""
        from .. import render_html as h

        root = self.nodes.get(self.root)
        svg = h.dot_svg(self.to_dot())
        drawing = svg if svg is not None else h.mermaid(self.to_mermaid())
        files = [n for n in self.nodes.values() if n["type"] == "file"]
        rows = [[h.cell(self._label(n)), h.cell(n.get("id")), h.cell(n.get("size")), h.cell(n.get("user"))] for n in files]
        table = h.section(f"{len(files)} files", h.table(["file", "id", "size", "user"], rows, len(rows)), is_open=False)
        return h.card(f"Lineage of {self._label(root) if root else self.root}",
                      f"{len(self.nodes)} nodes, {len(self.edges)} edges", f"<div>{drawing}</div>", table)


#: how many edges ``repr(lineage)`` lists
_REPR_EDGES = 20


def _safe_link(url: str | None) -> str | None:
    """``url`` when it is an http(s) link, else None: a permalink from another machine's records is
    untrusted, and a ``javascript:`` link in a drawing would run when clicked."""
    if isinstance(url, str) and url.lower().startswith(("https://", "http://")):
        return url
    return None


def _dot_str(text: str) -> str:
    """A DOT double-quoted string (newlines become DOT's centred line breaks)."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _mermaid_text(text: str) -> str:
    # Mermaid reads quotes and angle brackets (as in <locals>) as markup: use its entity codes.
    return str(text).replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def _code_short(node: dict[str, Any]) -> str:
    """``file.py:line`` of a step's code, for a node's label."""
    if not node.get("source_file"):
        return ""
    base = os.path.basename(node["source_file"])
    return f"{base}:{node['source_line']}" if node.get("source_line") else base


def _file_node(f: File, removed: bool = False) -> dict[str, Any]:
    return {"type": "file", "id": f.id, "name": f.name, "version": f.version, "hash": f.hash,
            "size": f.size, "created_at": f.created_at.isoformat(), "user": f.user, "removed": removed}


def _run_node(lake: LakeBase, run_id: str) -> dict[str, Any]:
    run = lake.catalog.run(run_id) or {}
    argv = run.get("argv") or []
    label = run.get("name")
    if not label and run.get("notebook"):
        label = f"notebook {os.path.basename(str(run['notebook']))}"
    elif not label and argv and str(argv[0]).endswith("ipykernel_launcher.py"):
        label = "notebook session"  # the kernel's argv is its connection file: say what it was instead
    elif not label and argv:
        label = " ".join(str(a) for a in argv[:3])
    return {"type": "run", "id": run_id, "label": label, "argv": argv, "user": run.get("user"), "host": run.get("host"),
            "started_at": str(run.get("started_at")), "git_commit": run.get("git_commit"),
            "git_dirty": run.get("git_dirty"), "git_remote": run.get("git_remote"),
            "limnos_version": run.get("limnos_version")}


_STEP_FIELDS = ("id", "key", "function", "module", "code_hash", "version", "source_file", "source_line", "git_commit",
                "git_remote", "permalink", "params", "user", "host", "limnos_version", "duration", "status", "run_id")


def _step_node(step: dict[str, Any]) -> dict[str, Any]:
    node = {"type": "step", **{k: step.get(k) for k in _STEP_FIELDS}}
    node["started_at"] = step["started_at"].isoformat() if step.get("started_at") else None
    node["inputs"] = [{k: i.get(k) for k in ("param", "name", "version", "hash")} for i in step.get("inputs") or []]
    return node


class _Makers:
    """Which step or run made each file, looked up in batches as the walk goes.

    A maker's node enters the graph only with its first edge, so no node dangles.
    """

    def __init__(self, lake: LakeBase, graph: Lineage) -> None:
        self.lake, self.graph = lake, graph
        self.made_by: dict[str, str | None] = {}  # file id -> maker key
        self._steps: dict[str, dict[str, Any]] = {}  # step key -> its row

    def load(self, files: Iterable[File]) -> None:
        """Learn which step or run made each of ``files`` (one query for those not known yet)."""
        todo = [f for f in files if f.id not in self.made_by]
        if not todo:
            return
        steps = self.lake.catalog.steps_of_files([f.id for f in todo])
        for f in todo:
            step = steps.get(f.id)
            if step is not None:
                self._steps[f"s:{step['id']}"] = step
                self.made_by[f.id] = f"s:{step['id']}"
            else:
                self.made_by[f.id] = f"r:{f.run_id}" if f.run_id else None

    def edge(self, src: str, dst: str) -> None:
        """Add an edge, and any step or run node at its ends that the graph lacks."""
        for key in (src, dst):
            if key not in self.graph.nodes:
                if key.startswith("s:"):
                    self.graph.nodes[key] = _step_node(self._steps[key])
                elif key.startswith("r:"):
                    self.graph.nodes[key] = _run_node(self.lake, key[2:])
        self.graph._edge(src, dst)

    def link(self, src: File, dst: File) -> None:
        """Link input ``src`` to ``dst`` through the step or run that made ``dst`` (directly if none is known)."""
        maker = self.made_by.get(dst.id)
        if maker is None:
            self.edge(f"f:{src.id}", f"f:{dst.id}")
        else:
            self.edge(f"f:{src.id}", maker)
            self.edge(maker, f"f:{dst.id}")


def build_lineage(lake: LakeBase, root: File, direction: str = "up", depth: int | None = None) -> Lineage:
    """The lineage graph around ``root`` (see :meth:`limnos.Lake.lineage`).

    Args:
        lake: the lake to walk.
        root: the file to start from.
        direction: ``up`` (what it was made from), ``down`` (what was made from it) or ``both``.
        depth: how many file-to-file hops to follow; None: all.

    Raises:
        InvalidRef: ``direction`` or ``depth`` is not one of the accepted values.
    """
    if direction not in DIRECTIONS:
        raise InvalidRef(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 0):
        raise InvalidRef("depth must be an int >= 0 (or None for the whole graph)")
    graph = Lineage(root=f"f:{root.id}")
    graph.nodes[graph.root] = _file_node(root)
    makers = _Makers(lake, graph)
    # The root's own maker, even with no inputs, says who made it and how.
    makers.load([root])
    root_maker = makers.made_by.get(root.id)
    if direction != "down" and root_maker:
        makers.edge(root_maker, graph.root)
    if direction in ("up", "both"):
        _walk(lake, graph, makers, [root], depth, up=True)
    if direction in ("down", "both"):
        _walk(lake, graph, makers, [root], depth, up=False)
    return graph


def _walk(lake: LakeBase, graph: Lineage, makers: _Makers, start: list[File], depth: int | None, up: bool) -> None:
    """Breadth-first from ``start`` through inputs (``up``) or outputs, adding nodes and edges."""
    frontier = list(start)
    seen = {f.id for f in frontier}
    level = 0
    while frontier and (depth is None or level < depth):
        ids = [f.id for f in frontier]
        links = lake.catalog.inputs_of(ids) if up else lake.catalog.outputs_of(ids)
        other_ids = sorted({i for lst in links.values() for i in lst})
        # Deleted files stay in the graph, marked removed: an input deleted with
        # rm(keep_dependents=True) is part of how its dependents were made.
        rows = lake.catalog.files_by_ids(other_ids, include_deleted=True)
        removed = lake.catalog.deleted_ids(list(rows))
        others = {i: File(lake, rows[i]) for i in other_ids if i in rows}
        makers.load(others.values() if not up else [])
        nxt = []
        for f in frontier:
            for other_id in links[f.id]:
                other = others.get(other_id)
                if other is None:
                    continue
                graph.nodes.setdefault(f"f:{other.id}", _file_node(other, other.id in removed))
                src, dst = (other, f) if up else (f, other)
                makers.load([dst])
                makers.link(src, dst)
                if other.id not in seen:
                    seen.add(other.id)
                    nxt.append(other)
        if up and (depth is None or level + 1 < depth):
            # A step of parameters only (no input files) still shows above the files it made.
            makers.load(nxt)
            for other in nxt:
                maker = makers.made_by.get(other.id)
                if maker and maker.startswith("s:"):
                    makers.edge(maker, f"f:{other.id}")
        frontier = nxt
        level += 1


def downstream_files(lake: LakeBase, root: File, depth: int | None = None) -> list[File]:
    """Every file made from ``root`` (through any number of steps/runs), nearest first.

    Files deleted since are left out, but the walk goes on through them: what
    was made from a deleted file made from ``root`` is made from ``root`` too.

    Args:
        lake: the lake to walk.
        root: the file to start from; it is not in the result.
        depth: how many hops to follow; None: all.
    """
    graph = build_lineage(lake, root, "down", depth)
    ids = [n["id"] for key, n in graph.nodes.items() if n["type"] == "file" and key != graph.root]
    rows = lake.catalog.files_by_ids(ids)
    return [File(lake, rows[i]) for i in ids if i in rows]
