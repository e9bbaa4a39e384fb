"""Advice in the CLI's words: the library's Python hints turned into commands.

The library says what to call (``call lake.fsck()``); a command line user
needs the command that does the same (``run 'limnos fsck'``). Error lines
(``cli/errors.py``) and report notes (``cli/render``) both go through
:func:`shell_advice`, so the library never has to speak shell.
"""

from __future__ import annotations

import re

#: The library's advice speaks Python; on a command line the same advice is a command.
#: Each pattern matches a whole hint (or the start of one); the rest of the hint is kept.
SHELL_ADVICE: list[tuple[re.Pattern[str], str]] = [(re.compile(p), r) for p, r in [
    (r"^see lake\.ls\(\)", "see 'limnos ls'"),
    (r"^see lake\.history\('(?P<a>[^']*)'\)", r"see 'limnos history \g<a>'"),
    (r"^see lake\.get\('(?P<a>[^']*)'\)\.metadata", r"see 'limnos info \g<a>'"),
    (r"^see lake\.datasets\(\)", "see 'limnos datasets'"),
    (r"see lake\.datasources\(\)", "see 'limnos ds list'"),
    (r"^see lake\.remotes\.list\(\)", "see 'limnos remote list'"),
    (r"^add one with lake\.remotes\.add\('origin', URL\)", "add one with 'limnos remote add origin URL'"),
    (r"call lake\.fsck\(repair=True\)", "run 'limnos fsck --repair'"),
    (r"call lake\.fsck\(\)", "run 'limnos fsck'"),
    (r"to call lake\.fsck\(\) there", "to run 'limnos fsck' there"),
    (r"call lake\.gc\(dry_run=False, grace=datetime\.timedelta\(0\)\)", "run 'limnos gc --yes --grace-days 0'"),
    (r"^call lake\.gc\(\)", "use 'limnos gc'"),
    (r"^call lake\.push\(\)", "run 'limnos push'"),
    (r"^call lake\.unlock\(ref\)", "run 'limnos unlock' on it"),
    (r"^call lake\.reindex\(force=True\)", "run 'limnos reindex --force'"),
    (r"call lake\.reindex\(\)", "run 'limnos reindex'"),
    (r"^create one with limnos\.init\(\)", "run 'limnos init' to create one"),
    (r"^create one with limnos\.init\('(?P<a>[^']*)'\)", r"run 'limnos init \g<a>' to create one"),
    (r"^call limnos\.tracking\.init_project\([^)]*\)", "run 'limnos init --project'"),
    (r"^open it with limnos\.open\('(?P<a>[^']*)'\)", r"use it with 'limnos --lake \g<a> ls'"),
    (r"^open it with limnos\.open\(\)", "use it with 'limnos ls'"),
    (r"such as limnos\.init\('(?P<a>[^']*)'\)", r"such as '\g<a>'"),
    (r"^pass name=$", "pass --name NAME"),
    (r"^create it with lake\.datasource\('(?P<a>[^']*)', root\)", r"create it with 'limnos ds create \g<a> ROOT'"),
    (r"delete unreferenced objects with lake\.gc\(dry_run=False\)", "delete unreferenced objects with 'limnos gc --yes'"),
    (r"\(limnos\.init\(url, catalog='postgresql://\.\.\.'\)\), or pass team=False",
     "('limnos init URL --catalog postgresql://...'), or pass --no-team"),
]]


def shell_advice(text: str) -> str:
    """The library's Python advice (``call lake.fsck()``) as the command that does the same (``run 'limnos fsck'``)."""
    for pattern, replacement in SHELL_ADVICE:
        text = pattern.sub(replacement, text)
    return text
