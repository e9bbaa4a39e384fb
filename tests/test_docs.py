"""Every code example of the docs site and the README runs, page by page, as a reader would run it.

Each page of ``docs/**/*.md`` (and ``README.md``) runs in a fresh subprocess in
an empty folder: its ```python blocks in one namespace, its ```bash blocks
(and the ``$ `` lines of ```console blocks) with ``bash -e``, all in page
order, with ``limnos`` and ``python`` on ``PATH`` running this tree. A failing
block is reported by page and line. The markers (HTML comments, invisible on
the site and on GitHub; CONTRIBUTING.md documents them):

* ``<!-- docs-test: skip (why) -->`` on the line before a fence: not run.
* ``<!-- docs-test: python`` ... ``-->`` (or ``bash``): hidden code, run at that
  point (the data a page's examples read, a fitted model...).
* A python block whose first line is ``# name.py`` is a file shown on the
  page: it is written to ``name.py`` for later blocks to run.

Buckets (``s3://NAME/``) are fresh buckets on the moto S3 server (the name
rewritten, the line count kept), ``http://minio:9000`` is its endpoint, and
``postgresql://me@db/lake`` a fresh PostgreSQL database; a page that uses
them carries the ``s3`` or ``postgres`` mark. Every page run is ``slow`` (a
subprocess working a lake for seconds; ``pytest tests/test_docs.py`` runs them
all), and so is ``mkdocs build --strict``, which runs here too.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import traceback
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RUN_LANGUAGES = {"python", "py", "bash", "sh", "shell", "console"}
MARKER = re.compile(r"^\s*<!-- docs-test: (skip\b.*?|requires [\w.]+|python|bash)\s*(-->)?\s*$")
FENCE = re.compile(r"^(\s*)(```+)\s*([\w+-]*)")
BUCKET = re.compile(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?=[/\"' ]|$)", re.M)
PG_EXAMPLE = "postgresql://me@db/lake"
MINIO = "http://minio:9000"


@dataclass
class Block:
    """One piece of code to run: where it is, its language, and whether it runs."""

    line: int           # 1-based line of its first code line in the page
    language: str       # python or bash (console is turned into bash)
    code: str
    skip: str = ""      # why it does not run ("" = it runs)
    hidden: bool = False
    file: str = ""      # a ``# name.py`` block: written to this file instead of run
    requires: str = ""  # a module the block needs (an optional extra, such as torch)


def pages() -> list[Path]:
    """The pages whose examples run: every docs page and the README."""
    return [*sorted(DOCS.rglob("*.md")), ROOT / "README.md"]


def parse(page: Path) -> list[Block]:
    """The code blocks of ``page`` in order, with their markers applied.

    Raises:
        ValueError: a marker that is not followed by a code block, or an unclosed block.
    """
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    skip = requires = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        marker = MARKER.match(line)
        fence = FENCE.match(line)
        if marker:
            kind = marker.group(1)
            if kind.startswith(("skip", "requires")):
                if not marker.group(2):
                    raise ValueError(f"{page}:{i + 1}: a {kind.split()[0]} marker must end with --> on its line")
                if kind.startswith("skip"):
                    skip = kind[4:].strip(" ()") or "skipped"
                else:
                    requires = kind.split()[1]
                i += 1
                if i >= len(lines) or not (FENCE.match(lines[i]) or MARKER.match(lines[i])):
                    raise ValueError(f"{page}:{i}: a {kind.split()[0]} marker must be right before a code block")
                continue
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "-->"), None)
            if end is None:
                raise ValueError(f"{page}:{i + 1}: hidden {kind} code without a closing --> line")
            blocks.append(Block(i + 2, kind, "\n".join(lines[i + 1:end]) + "\n", hidden=True))
            i = end + 1
        elif fence:
            indent, ticks, language = fence.group(1), fence.group(2), fence.group(3).lower()
            end = next((j for j in range(i + 1, len(lines))
                        if lines[j].strip() == ticks and lines[j].startswith(indent)), None)
            if end is None:
                raise ValueError(f"{page}:{i + 1}: a code block that never closes")
            code = "\n".join(text[len(indent):] if text.startswith(indent) else text.lstrip() for text in lines[i + 1:end])
            if language in RUN_LANGUAGES:
                blocks.append(to_block(i + 2, language, code + "\n", skip, requires))
            skip = requires = ""
            i = end + 1
        else:
            i += 1
    return blocks


def to_block(line: int, language: str, code: str, skip: str, requires: str = "") -> Block:
    """A fenced block as a Block: console blocks keep their ``$ `` commands, ``# name.py`` blocks become files."""
    if language == "console":
        code = "\n".join(text[2:] if text.startswith("$ ") else "" for text in code.splitlines()) + "\n"
        language = "bash"
    elif language in ("sh", "shell"):
        language = "bash"
    elif language == "py":
        language = "python"
    file = ""
    if language == "python":
        named = re.match(r"# ([\w./-]+\.py)\b", code)
        file = named.group(1) if named else ""
    return Block(line, language, code, skip=skip, file=file, requires=requires)


def needs(page: Path) -> set[str]:
    """The servers a page's running examples reach: ``s3`` and ``postgres``."""
    text = re.sub(r"(^|\s)#.*", "", "".join(b.code for b in parse(page) if not b.skip))  # comments reach nothing
    return {mark for mark, used in (("s3", BUCKET.search(text)), ("postgres", PG_EXAMPLE in text)) if used}


def page_id(page: Path) -> str:
    """``getting-started.md``, ``migrating/dvc.md``, ``README.md``."""
    return page.relative_to(DOCS).as_posix() if page.is_relative_to(DOCS) else page.name


def page_params() -> list[Any]:
    """One test per page that has code to run, marked with the servers it needs, and slow (each runs for seconds)."""
    return [pytest.param(page, id=page_id(page),
                         marks=[pytest.mark.slow, *(getattr(pytest.mark, m) for m in sorted(needs(page)))])
            for page in pages() if any(not block.skip for block in parse(page))]


def installed(module: str) -> bool:
    """Whether ``module`` can be imported here."""
    import importlib.util

    return importlib.util.find_spec(module) is not None


# ------------------------------------------------------------------- the runner
def rewrite(code: str, buckets: dict[str, str], endpoint: str, pg_url: str) -> str:
    """The code as run here: fresh buckets, the test S3 endpoint, a fresh database (same lines)."""
    code = BUCKET.sub(lambda m: f"s3://{buckets.get(m.group(1), m.group(1))}", code)
    return code.replace(MINIO, endpoint).replace(PG_EXAMPLE, pg_url) if endpoint or pg_url else code


def run_blocks(spec_path: str) -> int:
    """Run the blocks listed in a JSON spec, in order, in this process and the cwd; 1 at the first failure."""
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    page = spec["page"]
    sys.path[0] = os.getcwd()  # as `python -c` has it: `import pipe` finds a ``# pipe.py`` block, not tests/'s modules
    namespace: dict[str, Any] = {"__name__": "__main__"}
    for raw in spec["blocks"]:
        block = Block(**raw)
        where = f"{page}:{block.line}"
        if block.file:
            Path(block.file).write_text(block.code, encoding="utf-8")
            continue
        if block.language == "python":
            try:
                exec(compile("\n" * (block.line - 1) + block.code, page, "exec"), namespace)
            except BaseException:
                traceback.print_exc()
                print(f"\nFAILED: the python block at {where}", file=sys.stderr)
                return 1
        else:
            done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block.code], stdout=sys.stdout, stderr=sys.stderr)
            if done.returncode != 0:
                print(f"\nFAILED: the bash block at {where} exited {done.returncode}", file=sys.stderr)
                return 1
    return 0


def page_env(tmp_path: Path) -> dict[str, str]:
    """A clean environment: this tree's ``limnos`` and ``python`` first on PATH, a private HOME and cache."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    src = ROOT / "src"
    for name, run in (("limnos", f'"{sys.executable}" -m limnos'), ("python", f'"{sys.executable}"'),
                      ("python3", f'"{sys.executable}"')):
        (bin_dir / name).write_text(f'#!/bin/sh\nPYTHONPATH="{src}" exec {run} "$@"\n')
        (bin_dir / name).chmod(0o755)
    for name in ("pip", "pip3"):  # an example must never install into the environment running the tests
        (bin_dir / name).write_text('#!/bin/sh\necho "pip in a docs example: mark the block docs-test: skip" >&2\nexit 1\n')
        (bin_dir / name).chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    # Only what a shell needs: a variable of the test run (LIMNOS_*, AWS_*, EXPERIMENT_ID...) could change an example.
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "TERM")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env['PATH']}", PYTHONPATH=str(src), HOME=str(home),
               XDG_CACHE_HOME=str(tmp_path / "cache"), LIMNOS_PROGRESS="0", LIMNOS_USER_EMAIL="ana@example.org",
               GIT_AUTHOR_NAME="Ana", GIT_AUTHOR_EMAIL="ana@example.org", GIT_COMMITTER_NAME="Ana",
               GIT_COMMITTER_EMAIL="ana@example.org", MPLBACKEND="Agg")
    return env


@pytest.mark.parametrize("page", page_params())
def test_every_example_of_the_page_runs(page: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The page's examples run in order in an empty folder; hidden setup code included, skipped blocks not."""
    blocks = parse(page)
    env = page_env(tmp_path)
    buckets: dict[str, str] = {}
    endpoint = pg_url = ""
    marks = needs(page)
    if "s3" in marks:
        server = request.getfixturevalue("moto_s3")
        text = "".join(b.code for b in blocks if not b.skip)
        buckets = {name: server.new_bucket() for name in sorted(set(BUCKET.findall(text)))}
        endpoint = server.endpoint
        env.update(AWS_ENDPOINT_URL=server.endpoint, AWS_ACCESS_KEY_ID=server.key, AWS_SECRET_ACCESS_KEY=server.secret,
                   AWS_DEFAULT_REGION="us-east-1")
    if "postgres" in marks:
        pg_url = request.getfixturevalue("pg_database")
    missing = {b.requires for b in blocks if b.requires and not installed(b.requires)}
    if missing:  # visible, not silent; CI sets LIMNOS_REQUIRE_TORCH=1, which makes a missing torch fail here
        required = {m for m in missing if os.environ.get(f"LIMNOS_REQUIRE_{m.upper()}") == "1"}
        assert not required, f"{sorted(required)} not installed, and LIMNOS_REQUIRE_* says they must be"
        warnings.warn(f"{page_id(page)}: blocks needing {sorted(missing)} left out (not installed)", stacklevel=1)
    run = [asdict(b) | {"code": rewrite(b.code, buckets, endpoint, pg_url)}
           for b in blocks if not b.skip and b.requires not in missing]
    spec = tmp_path / "blocks.json"
    spec.write_text(json.dumps({"page": str(page), "blocks": run}), encoding="utf-8")
    work = tmp_path / "page"
    work.mkdir()
    done = subprocess.run([sys.executable, __file__, str(spec)], cwd=work, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, f"{page_id(page)}:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    for path in LEFT_BEHIND.get(page_id(page), []):
        assert (work / path).exists(), f"{page_id(page)}: its examples should have made {path}"


#: What a page's examples must leave in its folder, beyond running (these checks were in the seed tests).
LEFT_BEHIND = {
    "migrating/elliptio.md": ["my_data_lake/catalog.sqlite"],
    "migrating/radops.md": ["pipeline.py", ".limnos"],
    "migrating/dvc.md": ["project/limnos.lock", "clone/data/data.xml", "storage"],
    "getting-started.md": [".limnos/catalog.sqlite", "cli/train_v1.csv"],
}
#: The fewest python blocks a page runs (a page that lost its examples fails here).
MIN_PYTHON_BLOCKS = {"migrating/elliptio.md": 5, "migrating/datafolio.md": 4, "migrating/dagshub.md": 8}


@pytest.mark.parametrize("page", sorted(set(LEFT_BEHIND) | set(MIN_PYTHON_BLOCKS)))
def test_pages_keep_their_examples(page: str) -> None:
    """The pages the seed tests used to run keep their python blocks (the runs above check what they leave)."""
    blocks = [b for b in parse(DOCS / page) if b.language == "python" and not b.skip and not b.hidden]
    assert len(blocks) >= MIN_PYTHON_BLOCKS.get(page, 1)


# --------------------------------------------------------------- the markers
def test_markers_are_checked(tmp_path: Path) -> None:
    """A skip marker applies to the next block only; hidden code runs; a dangling marker is an error."""
    page = tmp_path / "p.md"
    page.write_text("<!-- docs-test: skip (needs a GPU) -->\n```python\nboom()\n```\n\n```python\nok = 1\n```\n"
                    "<!-- docs-test: python\nsetup = 2\n-->\n```console\n$ limnos ls\nraw/a.txt\n```\n"
                    "```python\n# tool.py\nprint(1)\n```\n```yaml\nnot: run\n```\n"
                    "<!-- docs-test: requires torch -->\n```python\nimport torch\n```\n")
    got = [(b.line, b.language, b.code, b.skip, b.hidden, b.file) for b in parse(page)]
    assert got == [(3, "python", "boom()\n", "needs a GPU", False, ""), (7, "python", "ok = 1\n", "", False, ""),
                   (10, "python", "setup = 2\n", "", True, ""), (13, "bash", "limnos ls\n\n", "", False, ""),
                   (17, "python", "# tool.py\nprint(1)\n", "", False, "tool.py"),
                   (25, "python", "import torch\n", "", False, "")]
    assert [b.requires for b in parse(page)] == ["", "", "", "", "", "torch"]
    page.write_text("<!-- docs-test: skip -->\n\ntext\n```python\nx\n```\n")
    with pytest.raises(ValueError, match="right before a code block"):
        parse(page)
    page.write_text("<!-- docs-test: python\nx = 1\n")
    with pytest.raises(ValueError, match="closing -->"):
        parse(page)


def test_a_failing_block_fails_the_page_with_its_line(tmp_path: Path) -> None:
    """The runner stops at the first failing block and names its line (so a broken example cannot pass)."""
    for code, language, expect in (("x = 1\nraise ValueError('broken')\n", "python", 'File "p.md", line 6'),
                                   ("true\nfalse\n", "bash", "bash block at p.md:5 exited 1")):
        spec = tmp_path / "spec.json"
        later = asdict(Block(9, "python", "open('reached', 'w')\n"))
        spec.write_text(json.dumps({"page": "p.md", "blocks": [asdict(Block(5, language, code)), later]}))
        done = subprocess.run([sys.executable, __file__, str(spec)], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 1 and expect in done.stderr and f"{language} block at p.md:5" in done.stderr
        assert not (tmp_path / "reached").exists()


def test_every_page_is_on_the_site() -> None:
    """Each docs page is in mkdocs.yml's nav, so none is built unreachable (mkdocs only warns)."""
    import yaml

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8").replace("!!python/name:", ""))

    def walk(node: Any) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, list):
            return [p for item in node for p in walk(item)]
        return [p for value in node.values() for p in walk(value)]

    listed = set(walk(config["nav"]))
    present = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert present - listed == set(), "add these pages to the nav of mkdocs.yml"


@pytest.mark.slow
def test_the_site_builds_strict(tmp_path: Path) -> None:
    """``mkdocs build --strict``: no broken link, no missing page, every API reference renders."""
    pytest.importorskip("mkdocs", reason="the docs extra: pip install -e '.[docs]'")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-6000:]
    assert (tmp_path / "site" / "reference" / "cli" / "index.html").is_file()


def hook_module(name: str) -> Any:
    """A module of docs/_hooks, loaded from its file (it is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"docs_hooks_{name}", DOCS / "_hooks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_optional_pages_leave_the_nav_only_while_missing(tmp_path: Path) -> None:
    """A missing optional page drops out of the nav (and an emptied section with it); any other entry stays."""
    site = hook_module("site")
    (tmp_path / "ml.md").write_text("# ML\n")
    nav = [{"Home": "index.md"}, {"Guide": [{"fsspec": "fsspec.md"}, {"ML": "ml.md"}, {"Gone": "typo.md"}]},
           {"Later": [{"UI": "ui.md"}]}]
    config = {"extra": {"optional_pages": ["fsspec.md", "ml.md", "ui.md"]}, "docs_dir": str(tmp_path), "nav": nav}
    assert site.on_config(config)["nav"] == [{"Home": "index.md"}, {"Guide": [{"ML": "ml.md"}, {"Gone": "typo.md"}]}]


def test_the_cli_reference_is_generated_from_the_app() -> None:
    """Every command of the typer app has a section, with its options and examples as console blocks."""
    import typer.main

    from limnos.cli.main import app

    text = hook_module("site").on_page_markdown("# CLI\n\n<!-- cli-reference -->\n")
    group = typer.main.get_command(app)
    assert "<!-- cli-reference -->" not in text
    for name in group.commands:  # type: ignore[attr-defined]
        assert f"`limnos {name}`" in text
    assert "`--json`" in text and "**Example**:\n\n```console\n$ limnos " in text


def test_docstrings_render_as_markdown() -> None:
    """reST roles, literal-block colons and doctests in docstrings become Markdown on the site."""
    roles = hook_module("griffe_roles")
    text = "Use :class:`~limnos.lake.Lake` and :func:`limnos.open`, or :meth:`.close`. Layout::\n\n    a/b\n\n>>> 1 + 1\n2\n"
    assert roles.markdown_docstring(text) == (
        "Use `Lake` and `limnos.open`, or `close`. Layout:\n\n    a/b\n\n```pycon\n>>> 1 + 1\n2\n```")


if __name__ == "__main__":
    sys.exit(run_blocks(sys.argv[1]))
