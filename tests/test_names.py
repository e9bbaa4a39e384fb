"""Names are text people read: no control or bidi characters, one spelling per name (NFC), escaped on display.

Issue 10 item 9: control characters (``\\n``, ``\\r``, ``\\t``, ESC, C1, U+2028)
and bidi controls (U+202E...) were accepted, so ``limnos ls`` printed raw
escape codes and a name could read backwards; the NFC and NFD spellings of
one name were two names. Every rule here holds for local names and, through
the same function, for names a remote sends (see test_hostile_remote.py).
"""

from __future__ import annotations

import datetime as dt
import os
import unicodedata
from pathlib import Path

import pytest
from typer.testing import CliRunner

import limnos
from limnos.catalog import Commit
from limnos.cli.app import app
from limnos.cli.render import printable
from limnos.errors import InvalidName
from limnos.names import new_id, parse_ref, validate_name

#: every kind of character a name must not hold, with a label for the test id
BAD_CHARACTERS = {
    "newline": "\n", "cr": "\r", "tab": "\t", "esc": "\x1b", "del": "\x7f", "c1-csi": "\x9b", "c1-nel": "\x85",
    "line-separator": "\u2028", "paragraph-separator": "\u2029", "rlo": "\u202e", "lre": "\u202a", "pdf": "\u202c",
    "rli": "\u2067", "pdi": "\u2069", "lrm": "\u200e", "rlm": "\u200f", "alm": "\u061c", "bell": "\x07",
}
CAFE_NFC = unicodedata.normalize("NFC", "café/menu.txt")
CAFE_NFD = unicodedata.normalize("NFD", "café/menu.txt")


@pytest.mark.parametrize("char", BAD_CHARACTERS.values(), ids=BAD_CHARACTERS.keys())
def test_control_and_bidi_characters_are_refused(char: str) -> None:
    for name in (f"a{char}b.txt", f"dir/{char}x", f"{char}", f"x{char}"):
        with pytest.raises(InvalidName) as exc:
            validate_name(name)
        assert exc.value.name == name
        # the message shows the character escaped, never raw
        assert char not in str(exc.value)
        assert f"U+{ord(char):04X}" in str(exc.value)
        with pytest.raises(InvalidName):
            parse_ref(f"{name}@2")


@pytest.mark.parametrize("char", ["\x1b", "\u202e", "\n"], ids=["esc", "rlo", "newline"])
def test_create_and_add_refuse_them_and_write_nothing(lake: limnos.Lake, tmp_path: Path, char: str) -> None:
    with pytest.raises(InvalidName), lake.create(f"evil{char}[31m.txt") as w:
        w.write_text("x")
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "good.txt").write_text("good")
    (folder / f"bad{char}name.txt").write_text("bad")  # Linux allows any byte but '/' and NUL
    with pytest.raises(InvalidName):
        lake.add(str(folder), name="src")
    with pytest.raises(InvalidName):
        lake.add(str(folder / "good.txt"), name=f"x{char}y")
    assert lake.ls() == [] and lake.store.list_records() == []
    assert list(lake.cache.iter_objects()) == []


def test_names_are_nfc_everywhere(lake: limnos.Lake, tmp_path: Path) -> None:
    assert CAFE_NFC != CAFE_NFD
    assert validate_name(CAFE_NFD) == CAFE_NFC
    assert parse_ref(CAFE_NFD + "@1").name == CAFE_NFC
    with lake.create(CAFE_NFD) as w:
        w.write_text("one")
    with lake.create(CAFE_NFC) as w:
        w.write_text("two")
    files = lake.ls()
    assert [f.name for f in files] == [CAFE_NFC]  # one name, two versions
    assert [f.read_text() for f in lake.history(CAFE_NFD)] == ["one", "two"]
    assert lake.get(CAFE_NFD + "@1").read_text() == "one"
    assert [f.name for f in lake.ls(unicodedata.normalize("NFD", "café/"))] == [CAFE_NFC]
    # a local file spelled NFD (as macOS writes names) is added under the NFC name
    folder = tmp_path / "local"
    (folder / unicodedata.normalize("NFD", "café")).mkdir(parents=True)
    (folder / unicodedata.normalize("NFD", "café") / "menu.txt").write_text("three")
    added = lake.add(str(folder), name="docs")
    assert [f.name for f in added] == ["docs/" + CAFE_NFC] and added.new_versions == 1
    assert lake.get("docs/" + CAFE_NFD).read_text() == "three"
    again = lake.add(str(folder), name="docs")
    assert again.new_versions == 0  # the NFD spelling on disk matches the NFC name in the lake


def test_two_local_spellings_of_one_name_are_refused(lake: limnos.Lake, tmp_path: Path) -> None:
    folder = tmp_path / "both"
    folder.mkdir()
    (folder / unicodedata.normalize("NFC", "é.txt")).write_text("nfc")
    (folder / unicodedata.normalize("NFD", "é.txt")).write_text("nfd")
    with pytest.raises(InvalidName, match="NFC"):
        lake.add(str(folder), name="both")
    assert lake.ls() == []


def test_printable_escapes_what_a_terminal_would_obey() -> None:
    assert printable("raw/train.csv") == "raw/train.csv"
    assert printable("café ☕ 日本") == "café ☕ 日本"
    assert printable("a\x1b[31mb") == "a\\x1b[31mb"
    assert printable("x\u202ey") == "x\\u202ey"
    assert printable("l1\nl2\r\t") == "l1\\nl2\\r\\t"
    assert printable("\x9b\u2028\x00") == "\\x9b\\u2028\\x00"
    assert printable(None) == "None"


def _old_lake_with_hostile_text(lake: limnos.Lake) -> str:
    """A catalog holding a name with ESC and RLO in it, as a lake from before the rule could."""
    evil = "evil\x1b]0;pwned\x07\x1b[2J\u202etxt.exe"
    with lake.create("plain.txt", metadata={"note": "\x1b[31mred\x1b[0m\u202e"}) as w:
        w.write_text("x")
    now = dt.datetime.now(dt.timezone.utc)
    commit = Commit(id=new_id(), created_at=now, kind="create")
    commit.files.append({"id": new_id(), "name": evil, "version": 1, "hash": lake.get("plain.txt").hash, "size": 1,
                         "created_at": now, "run_id": None, "kind": "object", "uri": None, "commit_id": commit.id})
    lake.catalog.replay([commit])  # straight into the catalog: validation is bypassed on purpose
    return evil


def test_cli_escapes_unprintable_text(tmp_path: Path) -> None:
    lake = limnos.init(str(tmp_path / "lake"))
    evil = _old_lake_with_hostile_text(lake)
    lake.close()
    runner = CliRunner()
    env = {"LIMNOS_LAKE": str(tmp_path / "lake")}
    outputs = []
    for args in (["ls"], ["history", "plain.txt"], ["info", "plain.txt"], ["query", "note=x"], ["lineage", "plain.txt"]):
        result = runner.invoke(app, args, env=env)
        assert result.exit_code in (0, 1), (args, result.stdout, result.stderr)
        outputs.append(result.stdout + result.stderr)
    text = "\n".join(outputs)
    assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    assert "\\x1b" in text and "\\u202e" in text
    assert printable(evil) in outputs[0]
    # the bad name itself cannot be asked for any more, and the refusal is one escaped line
    result = runner.invoke(app, ["info", evil], env=env)
    assert result.exit_code != 0 and "\x1b" not in result.stderr and "\\x1b" in result.stderr
    assert os.path.isdir(tmp_path / "lake")
