"""``limnos lineage``: radops-style boxes (inputs -> step or run -> output) and, for deep graphs, a tree.

The boxes show one level around the file; when the graph spans more than one
level, a tree of the whole walk follows them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.console import RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from .console import argv_text, duration, params_text, printable, short_hash, size, when, who

if TYPE_CHECKING:
    from limnos import Lake
    from limnos.ops.lineage import Lineage

MAX_BOX_ITEMS = 12  # names listed in one lineage box before "... and N more"


def _file_lines(node: dict[str, Any], detail: bool = False) -> Text:
    text = Text(printable(f"{node['name']}@{node['version']}"), style="bold")
    if node.get("removed"):
        text.append(" (removed)", style="red")
    if detail:
        text.append(f"\nid   {printable(node['id'])}", style="dim")
        text.append(f"\nsize {size(node.get('size'))}")
        text.append(f"\nhash {printable(short_hash(node.get('hash')))}")
        if node.get("user"):
            text.append(f"\nby   {printable(node['user'])}")
    return text


def _files_box(graph: Lineage, keys: Sequence[str], title: str, detail: bool = False) -> Panel:
    parts: list[Text] = []
    for key in keys[:MAX_BOX_ITEMS]:
        parts.append(_file_lines(graph.nodes[key], detail))
    if len(keys) > MAX_BOX_ITEMS:
        parts.append(Text(f"… and {len(keys) - MAX_BOX_ITEMS} more", style="dim"))
    if not parts:
        parts.append(Text("(none)", style="dim"))
    body = Text("\n").join(parts) if not detail else Text("\n\n").join(parts)
    return Panel(body, title=title, title_align="left", expand=False, border_style="cyan")


def _run_box(run: dict[str, Any] | None, title: str) -> Panel:
    if not run:
        return Panel(Text("(no run recorded)", style="dim"), title=title, title_align="left", expand=False)
    text = Text(printable(f"run {run['name']}") if run.get("name") else "process", style="bold magenta")
    text.append("\n" + printable(who(run.get("user"), run.get("host"))))
    text.append(f"\nstarted {when(run.get('started_at'))}")
    if "argv" in run:
        text.append(f"\n$ {argv_text(run.get('argv'), limit=60)}")
    commit = run.get("git_commit")
    if commit:
        text.append(f"\ngit {printable(commit[:10])}")
        if run.get("git_dirty"):
            text.append(" (dirty)", style="yellow")
    else:
        text.append("\ngit -", style="dim")
    text.append(f"\nlimnos {printable(run.get('limnos_version') or '?')}", style="dim")
    text.append(f"\nrun {printable(run.get('id', ''))}", style="dim")
    return Panel(text, title=title, title_align="left", expand=False, border_style="magenta")


def step_box(node: dict[str, Any], title: str) -> Panel:
    """A step execution (a lineage node or a StepRecord's dict): function, who, when, code, git."""
    text = Text(printable(f"step {node.get('function')}"), style="bold magenta")
    if node.get("status") == "failed":
        text.append("  FAILED", style="bold red")
    text.append("\n" + printable(who(node.get("user"), node.get("host"))))
    text.append(f"\nran {when(node.get('started_at'))} ({duration(node.get('duration'))})")
    if node.get("source_file"):
        text.append("\ncode " + printable(f"{os.path.basename(node['source_file'])}:{node.get('source_line') or '?'}"))
    commit = node.get("git_commit")
    text.append(f"\ngit {printable(commit[:10])}" if commit else "\ngit -", style=None if commit else "dim")
    text.append(f"\nparams {params_text(node.get('params'), 50)}")
    if node.get("version") is not None:
        text.append(f"\nversion {printable(node['version'])}")
    text.append(f"\nlimnos {printable(node.get('limnos_version') or '?')}", style="dim")
    text.append(f"\nstep {printable(node.get('id', ''))}", style="dim")
    return Panel(text, title=title, title_align="left", expand=False, border_style="magenta")


def _arrow_row(*cells: RenderableType) -> Table:
    """Boxes side by side, joined by arrows at mid height."""
    row: list[RenderableType] = []
    for i, cell in enumerate(cells):
        if i:
            row.append(Text("──▶", style="bold"))
        row.append(cell)
    grid = Table.grid(padding=(0, 1))
    for i in range(len(row)):
        grid.add_column(vertical="middle", no_wrap=(i % 2 == 1))
    grid.add_row(*row)
    return grid


def _run_info(lake: Lake, graph: Lineage, run_key: str) -> dict[str, Any]:
    """The full run row (with argv) through one of the files it made, else the graph's summary."""
    node = dict(graph.nodes.get(run_key, {}))
    for child in graph.children(run_key):
        if child.startswith("f:") and not graph.nodes[child].get("removed"):  # a removed file no longer resolves
            run = lake.get(graph.nodes[child]["id"]).run
            if run:
                return {**node, **run}
    return node


def _levels(graph: Lineage, up: bool) -> int:
    """How many file -> run -> file steps the graph spans from its root."""
    step = graph.parents if up else graph.children
    depth, frontier, seen = 0, [graph.root], {graph.root}
    while frontier:
        nxt = []
        for key in frontier:
            for run in step(key):
                for other in (step(run) if not run.startswith("f:") else [run]):
                    if other.startswith("f:") and other not in seen:
                        seen.add(other)
                        nxt.append(other)
        if nxt:
            depth += 1
        frontier = nxt
    return depth


def lineage_tree(graph: Lineage, up: bool) -> Tree:
    """The whole walk as a tree; a file met twice says "(see above)" instead of repeating its branch.

    Args:
        graph: The lineage graph, from ``lake.lineage``.
        up: True when the graph was walked upstream (what the file was made from).
    """
    step = graph.parents if up else graph.children
    label = "upstream" if up else "downstream"
    root_node = graph.nodes[graph.root]
    tree = Tree(Text.assemble((f"lineage ({label}) of ", "dim"),
                              (printable(f"{root_node['name']}@{root_node['version']}"), "bold")))
    shown: set[str] = set()

    def label_of(key: str) -> Text:
        node = graph.nodes[key]
        if node["type"] == "file":
            label = Text(printable(f"{node['name']}@{node['version']}"), style="bold cyan")
            if node.get("removed"):
                label.append(" (removed)", style="red")
            return label
        by = printable(who(node.get("user"), node.get("host")))
        if node["type"] == "step":
            return Text.assemble(("ƒ ", "magenta"), (printable(f"step {node['function']}"), "magenta"),
                                 (f"  {by}, {when(node.get('started_at'))}", "dim"))
        name = node.get("label") or "run"
        if name.startswith("/"):  # an argv: show the program's base name
            head, _, rest = name.partition(" ")
            name = f"{os.path.basename(head)} {rest}".strip()
        return Text.assemble(("⚙ ", "magenta"), (printable(name), "magenta"),
                             (f"  {by}, {when(node.get('started_at'))}", "dim"))

    def grow(branch: Tree, key: str, path: frozenset[str]) -> None:
        for other in step(key):
            if other in path:
                continue
            sub = branch.add(label_of(other))
            if other in shown and graph.nodes[other]["type"] == "file" and step(other):
                sub.label = Text.assemble(label_of(other), (" (see above)", "dim"))
                continue
            shown.add(other)
            grow(sub, other, path | {other})

    grow(tree, graph.root, frozenset({graph.root}))
    return tree


def _maker_box(lake: Lake, graph: Lineage, key: str, title: str) -> Panel:
    if key.startswith("s:"):
        return step_box(graph.nodes[key], title)
    return _run_box(_run_info(lake, graph, key), title)


def _code_lines(graph: Lineage, keys: Sequence[str]) -> list[RenderableType]:
    """Below the boxes, radops-style: each step's full code link and limnos version."""
    out: list[RenderableType] = []
    for key in keys:
        node = graph.nodes[key]
        if node["type"] != "step":
            continue
        link = node.get("permalink") or (f"{node['source_file']}:{node.get('source_line')}" if node.get("source_file") else None)
        text = Text.assemble(("step code: ", "bold"), (printable(link or "(no source recorded)"), "cyan" if link else "dim"))
        if not node.get("permalink") and node.get("git_commit"):
            text.append(f"  (git {printable(node['git_commit'][:10])}; "
                        "no permalink: not a GitHub/GitLab remote or not committed as run)", style="dim")
        text.append(f"\nlimnos version: {printable(node.get('limnos_version') or '?')}", style="dim")
        out.append(text)
    return out


def lineage_renderables(lake: Lake, graph: Lineage, down: bool = False) -> list[RenderableType]:
    """radops-style boxes: inputs -> step or run -> output (or, with ``down``, file -> step or run -> outputs).

    Args:
        lake: The lake the graph comes from (to read each run's full record).
        graph: The lineage graph, from ``lake.lineage``.
        down: The graph was walked downstream (what was made from the file).
    """
    root = graph.root
    out: list[RenderableType] = []
    shown: list[str] = []
    if not down:
        makers = [k for k in graph.parents(root) if not k.startswith("f:")]
        direct = [k for k in graph.parents(root) if k.startswith("f:")]
        for key in makers:
            inputs = [k for k in graph.parents(key) if k.startswith("f:")]
            out.append(_arrow_row(_files_box(graph, inputs, "input files"),
                                  _maker_box(lake, graph, key, "created by"),
                                  _files_box(graph, [root], "output", detail=True)))
            shown.append(key)
        if not makers:
            out.append(_arrow_row(_files_box(graph, direct, "input files"), _run_box(None, "created by"),
                                  _files_box(graph, [root], "output", detail=True)))
    else:
        makers = [k for k in graph.children(root) if not k.startswith("f:")]
        direct = [k for k in graph.children(root) if k.startswith("f:")]
        for key in makers:
            outputs = [k for k in graph.children(key) if k.startswith("f:")]
            out.append(_arrow_row(_files_box(graph, [root], "file", detail=True),
                                  _maker_box(lake, graph, key, "used by"),
                                  _files_box(graph, outputs, "outputs")))
            shown.append(key)
        if direct:
            out.append(_arrow_row(_files_box(graph, [root], "file", detail=True), _run_box(None, "used by"),
                                  _files_box(graph, direct, "outputs")))
        if not makers and not direct:
            node = graph.nodes[root]
            out.append(_files_box(graph, [root], "file", detail=True))
            out.append(Text(printable(f"no file in the lake was made from {node['name']}@{node['version']}"), style="dim"))
    out.extend(_code_lines(graph, shown))
    if _levels(graph, up=not down) > 1:
        out.append(Text(""))
        out.append(lineage_tree(graph, up=not down))
    return out
