"""A griffe extension for the API reference: limnos docstrings use a few reST habits; render them as Markdown.

* Sphinx roles (``:class:`~limnos.Lake```, ``:meth:`close```) become inline code
  naming the object (the last part with ``~``, as Sphinx shows it).
* A paragraph ending in ``::`` (a reST literal block follows) ends in ``:``;
  the indented block after it is already a Markdown code block.
* Doctest lines (``>>> ``, ``... ``) outside a fence are fenced as ``pycon``.

The source keeps its docstrings as they are: ``help()`` and IDEs show them
as written, and this runs only when the site is built.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|exc|data|obj|const):`(~?)\.?([^`]+)`")


def role_to_code(match: re.Match[str]) -> str:
    """``:class:`~a.b.C``` -> ```C```; ``:func:`a.f``` -> ```a.f```."""
    tilde, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


def fence_doctests(text: str) -> str:
    """Wrap runs of ``>>>``/``...`` lines (and the output lines after them) in a ``pycon`` fence."""
    out: list[str] = []
    in_fence = in_doctest = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            in_fence = not in_fence
        elif not in_fence and not in_doctest and stripped.startswith(">>>"):
            out.append("```pycon")
            in_doctest = True
        elif in_doctest and not stripped:
            out.append("```")
            in_doctest = False
        out.append(line)
    if in_doctest:
        out.append("```")
    return "\n".join(out)


def markdown_docstring(text: str) -> str:
    """The docstring with roles, ``::`` and doctests in Markdown."""
    text = ROLE.sub(role_to_code, text)
    text = re.sub(r"(\S)::$", r"\1:", text, flags=re.M)
    text = re.sub(r"^::$", "", text, flags=re.M)
    return fence_doctests(text)


class MarkdownDocstrings(griffe.Extension):
    """Rewrite each docstring once it is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Called for every module, class, function and attribute griffe loads."""
        if obj.docstring is not None:
            obj.docstring.value = markdown_docstring(obj.docstring.value)
