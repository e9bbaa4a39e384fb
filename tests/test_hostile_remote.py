"""A remote is untrusted input: crafted records files, pack indexes and packs (issue 10 items 5, 6, 7, 9).

The attacker controls a remote the victim pulls from (a shared folder, or a
bucket: moto here). Every crafted records file must be refused with
``RecordsInvalid`` naming it, before any of its rows reach the catalog or
the local store; the good records beside it are still imported; the lake
keeps opening; and the victim's own files are never read through a crafted
hash, nor uploaded by a later push. Broken pack indexes and packs raise
``IntegrityError`` or ``RemoteError`` naming the remote key, never a raw
``JSONDecodeError``, ``TypeError``, ``FileNotFoundError`` or ``OSError``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import limnos
from limnos.catalog import Commit
from limnos.core.recovery import roll_forward
from limnos.errors import (
    CatalogVersionError,
    FileNotFound,
    IntegrityError,
    LimnosError,
    RecordsDamaged,
    RecordsInvalid,
    RemoteError,
)
from limnos.names import new_id
from limnos.store import LocalObjectStore, ObjectStore, hashing

SECRET = b"TOP SECRET: the victim's private key"
Rows = list[dict[str, Any]]


@dataclass
class Scene:
    """An honest writer, a victim, the remote they share, and a raw handle on it for the attacker."""

    alice: limnos.Lake
    bob: limnos.Lake
    bob_path: str
    remote: ObjectStore  # the attacker writes raw keys through it
    victim_file: str  # a private file on the victim's machine
    good_hash: str
    good_size: int

    def put(self, relpath: str, data: bytes) -> str:
        """Write ``data`` at ``relpath`` under the remote's root, as an attacker with write access would."""
        key = f"{self.remote.root}/{relpath}"
        self.remote.fs.pipe_file(key, data)
        return key

    def remove(self, relpath: str) -> None:
        """Delete a key the attacker wrote."""
        self.remote.fs.rm_file(f"{self.remote.root}/{relpath}")


def _remote_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    if kind == "folder":
        return str(tmp_path / "remote"), {}
    server = request.getfixturevalue("moto_s3")
    return f"s3://{server.new_bucket()}/remote", server.options()


@pytest.fixture(params=["folder", "moto"])
def scene(request: pytest.FixtureRequest, tmp_path: Path, catalog_url: str | None) -> Iterator[Scene]:
    """Alice pushed one honest file; Bob (the victim, on each catalog) pulled it."""
    url, options = _remote_url(request.param, tmp_path, request)
    alice = limnos.init(str(tmp_path / "alice" / ".limnos"))
    alice.remotes.add("origin", url, **options)
    with alice.create("a.txt", metadata={"i": 1}) as w:
        w.write_bytes(b"hello")
    alice.push()
    bob_path = str(tmp_path / "bob" / ".limnos")
    bob = limnos.init(bob_path, catalog=catalog_url)
    bob.remotes.add("origin", url, **options)
    bob.pull()
    victim = tmp_path / "bob" / "id_ed25519"
    victim.write_bytes(SECRET)
    good = alice.get("a.txt")
    yield Scene(alice, bob, bob_path, ObjectStore(url, **options), str(victim), good.hash or "", good.size)
    alice.close()
    bob.close()


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


def commit_rows(digest: str, size: int, name: str = "evil.txt") -> Rows:
    """A well-formed commit (as another machine's limnos writes it): a run, one file, one metadata row."""
    cid, run_id, file_id, now = new_id(), new_id(), new_id(), _now()
    return [
        {"type": "commit", "format": 1, "id": cid, "created_at": now, "kind": "create"},
        {"type": "run", "id": run_id, "started_at": now, "name": None, "user": "mallory", "host": "evil",
         "argv": ["train.py"], "cwd": "/work", "script": "/work/train.py", "git_commit": None, "git_dirty": None,
         "git_diff_hash": None, "git_remote": None, "python": "3.11.7", "limnos_version": "0.1",
         "notebook": None, "packages": None, "config": None},
        {"type": "file", "id": file_id, "name": name, "version": 1, "hash": digest, "size": size,
         "run_id": run_id, "kind": "object", "uri": None},
        {"type": "meta", "file_id": file_id, "key": "i", "vtype": "int", "v_int": 7, "v_float": None,
         "v_str": None, "deleted": False},
    ]


def encode(rows: Rows) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _file(rows: Rows) -> dict[str, Any]:
    return next(r for r in rows if r["type"] == "file")


def _set(row: Callable[[Rows], dict[str, Any]], key: str, value: Any) -> Callable[[Rows, Scene], Rows | bytes]:
    def mutate(rows: Rows, scene: Scene) -> Rows:
        row(rows)[key] = value
        return rows

    return mutate


def _header(rows: Rows) -> dict[str, Any]:
    return rows[0]


def _run(rows: Rows) -> dict[str, Any]:
    return rows[1]


def _meta(rows: Rows) -> dict[str, Any]:
    return rows[3]


def _add(row: dict[str, Any]) -> Callable[[Rows, Scene], Rows]:
    def mutate(rows: Rows, scene: Scene) -> Rows:
        return [*rows, {k: (_file(rows)["id"] if v == "$file" else v) for k, v in row.items()}]

    return mutate


def _traversal(rows: Rows, scene: Scene) -> Rows:
    _file(rows)["hash"] = "00/" + scene.victim_file  # objects/00/<absolute path> joins to the victim's file
    return rows


def _deep(rows: Rows, scene: Scene) -> bytes:
    data = encode(rows).decode().splitlines()
    data[1] = data[1].replace('"config": null', '"config": ' + "[" * 100_000 + "]" * 100_000)
    return ("\n".join(data) + "\n").encode()


def _key_type_clash(rows: Rows, scene: Scene) -> Rows:
    _meta(rows).update(vtype="str", v_int=None, v_str="seven")  # Bob's lake holds int values for "i"
    return rows


def _dangling_meta(rows: Rows, scene: Scene) -> Rows:
    _meta(rows)["file_id"] = new_id()  # a file no commit made
    return rows


def _dangling_run(rows: Rows, scene: Scene) -> Rows:
    _file(rows)["run_id"] = new_id()
    return rows


def _reused_file_id(rows: Rows, scene: Scene) -> Rows:
    # the id of Bob's a.txt, with a version that would move a.txt's current version and hide it
    _file(rows).update(id=scene.bob.get("a.txt").id, name="a.txt", version=99)
    return rows


def _no_header(rows: Rows, scene: Scene) -> Rows:
    return rows[1:]


def _duplicate_file(rows: Rows, scene: Scene) -> Rows:
    return [*rows, dict(_file(rows))]


#: name -> how the attacker turns a well-formed commit into a crafted one
CASES: dict[str, Callable[[Rows, Scene], Rows | bytes]] = {
    "hash-path-traversal": _traversal,
    "hash-uppercase": lambda rows, s: _set(_file, "hash", s.good_hash.upper())(rows, s),
    "hash-short": _set(_file, "hash", "abc123"),
    "hash-number": _set(_file, "hash", 12345),
    "object-without-hash": _set(_file, "hash", None),
    "size-huge": _set(_file, "size", 10**20),
    "size-negative": _set(_file, "size", -1),
    "size-text": _set(_file, "size", "5"),
    "size-bool": _set(_file, "size", True),
    "size-float": _set(_file, "size", 5.5),
    "version-text": _set(_file, "version", "abc"),
    "version-zero": _set(_file, "version", 0),
    "version-huge": _set(_file, "version", 2**31),
    "file-id-null": _set(_file, "id", None),
    "file-id-not-ulid": _set(_file, "id", "../../etc"),
    "file-kind-long": _set(_file, "kind", "k" * 40),
    "file-uri-control": _set(_file, "uri", "s3://b/\x1b[2J"),
    "name-dotdot": _set(_file, "name", "../../escape.txt"),
    "name-absolute": _set(_file, "name", "/etc/passwd"),
    "name-empty": _set(_file, "name", ""),
    "name-esc": _set(_file, "name", "evil\x1b[31m.txt"),
    "name-rlo": _set(_file, "name", "evil\u202etxt.exe"),
    "name-number": _set(_file, "name", 123),
    "name-version-suffix": _set(_file, "name", "x@3"),
    "commit-id-zero": _set(_header, "id", "0" * 26),
    "commit-id-future": _set(_header, "id", "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"),
    "commit-id-null": _set(_header, "id", None),
    "commit-created-garbage": _set(_header, "created_at", "yesterday"),
    "commit-kind-number": _set(_header, "kind", 5),
    "commit-format-text": _set(_header, "format", "1"),
    "commit-format-newer": _set(_header, "format", 99),
    "no-header": _no_header,
    "run-started-garbage": _set(_run, "started_at", "2024-13-45"),
    "run-id-bad": _set(_run, "id", "run-1"),
    "run-user-nul": _set(_run, "user", "mal\x00lory"),
    "run-user-surrogate": _set(_run, "user", "\ud800"),
    "run-config-nan": _set(_run, "config", {"lr": float("nan")}),
    "run-git-commit-long": _set(_run, "git_commit", "f" * 65),
    "deep-nesting": _deep,
    "meta-vtype-unknown": _set(_meta, "vtype", "pickle"),
    "meta-int-overflow": _set(_meta, "v_int", 2**64),
    "meta-key-empty": _set(_meta, "key", ""),
    "meta-key-reserved": _set(_meta, "key", "hash"),
    "meta-blob-traversal": lambda rows, s: _meta(rows).update(vtype="blob", v_int=None, v_str="00/" + s.victim_file)
    or rows,
    "meta-key-type-clash": _key_type_clash,
    "meta-dangling-file": _dangling_meta,
    "file-dangling-run": _dangling_run,
    "duplicate-file-id": _duplicate_file,
    "reused-file-id": _reused_file_id,
    "input-position-negative": _add({"type": "input", "file_id": "$file", "input_id": "$file", "position": -1}),
    "tombstone-time-garbage": _add({"type": "tombstone", "file_id": "$file", "deleted_at": "soon"}),
    "tombstone-dangling": lambda rows, s: _add({"type": "tombstone", "file_id": new_id(), "deleted_at": _now()})(rows, s),
    "lock-id-bad": _add({"type": "lock", "file_id": 7, "locked_at": _now()}),
    "step-output-dangling": lambda rows, s: _add({"type": "step_output", "step_id": new_id(), "position": 0,
                                                  "file_id": "$file", "label": None})(rows, s),
    "datapoint-dangling": lambda rows, s: _add({"type": "datapoint", "id": new_id(), "datasource_id": new_id(),
                                                "path": "x.png", "file_id": "$file", "fingerprint": None})(rows, s),
    "datapoint-path-escape": lambda rows, s: _add({"type": "datasource", "id": (d := new_id()), "name": "ds",
                                                   "root": "raw/", "kind": "lake"})(
        _add({"type": "datapoint", "id": new_id(), "datasource_id": d, "path": "../../x",
              "file_id": "$file", "fingerprint": None})(rows, s), s),
    "row-not-object": lambda rows, s: encode(rows) + b"[1, 2, 3]\n",
    "row-without-type": lambda rows, s: encode(rows) + b'{"id": "x"}\n',
    "not-json": lambda rows, s: b'{"type": "commit", "id": \n',
    "not-utf8": lambda rows, s: b"\xff\xfe\x00garbage\n",
    "empty": lambda rows, s: b"",
}


def _assert_refused(scene: Scene, cid: str, key: str, exc: BaseException) -> None:
    assert type(exc) is RecordsInvalid, f"{type(exc).__name__}: {exc}"
    assert isinstance(exc, IntegrityError) and isinstance(exc, LimnosError)
    assert exc.commit_id == cid and exc.path is not None and exc.path.endswith(f"records/{cid}.jsonl")
    assert cid in str(exc) and "\n" not in str(exc)


def test_a_well_formed_foreign_commit_is_accepted(scene: Scene) -> None:
    """The control case: the template every crafted case starts from is valid as it is."""
    rows = commit_rows(scene.good_hash, scene.good_size)
    scene.put(f"records/{rows[0]['id']}.jsonl", encode(rows))
    scene.bob.pull()
    assert scene.bob.get("evil.txt").read_bytes() == b"hello" and scene.bob.get("evil.txt").metadata == {"i": 7}


def test_crafted_records_are_refused_and_write_nothing(scene: Scene) -> None:
    bob = scene.bob
    before = (bob.catalog.commit_ids(), [(f.name, f.version, f.hash) for f in bob.ls()], bob.store.list_records())
    wrong = []
    for case, mutate in CASES.items():
        rows = commit_rows(scene.good_hash, scene.good_size)
        cid = new_id()  # the records file's own name; the header may claim another id
        rows[0]["id"] = cid
        crafted = mutate(rows, scene)
        relpath = f"records/{cid}.jsonl"
        scene.put(relpath, crafted if isinstance(crafted, bytes) else encode(crafted))
        try:
            bob.pull()
        except RecordsInvalid as exc:
            try:
                _assert_refused(scene, cid, relpath, exc)
            except AssertionError as failure:
                wrong.append(f"{case}: {failure}")
        except Exception as exc:  # every escape is reported with its case
            wrong.append(f"{case}: raised {type(exc).__name__}: {str(exc)[:200]}")
        else:
            wrong.append(f"{case}: accepted")
        finally:
            scene.remove(relpath)
        after = (bob.catalog.commit_ids(), [(f.name, f.version, f.hash) for f in bob.ls()], bob.store.list_records())
        if after != before:
            wrong.append(f"{case}: the catalog or the local records changed")
            break
    assert wrong == [], "\n".join(wrong)
    # nothing is waiting to be rolled forward, the lake reopens, and fsck is clean
    assert roll_forward(bob, grace=0).rolled_forward == []
    bob.close()
    again = limnos.open(scene.bob_path)
    try:
        assert [f.name for f in again.ls()] == ["a.txt"] and again.fsck().ok
    finally:
        again.close()


def test_good_records_beside_a_bad_one_are_still_imported(scene: Scene) -> None:
    with scene.alice.create("b.txt") as w:
        w.write_bytes(b"more honest work")
    scene.alice.push()
    bad = commit_rows(scene.good_hash, scene.good_size)
    _traversal(bad, scene)
    scene.put(f"records/{bad[0]['id']}.jsonl", encode(bad))
    with pytest.raises(RecordsInvalid) as exc:
        scene.bob.pull()
    assert exc.value.commit_id == bad[0]["id"] and "1 of 2" in str(exc.value)
    assert scene.bob.get("b.txt").read_bytes() == b"more honest work"  # imported and downloaded
    assert bad[0]["id"] not in scene.bob.catalog.commit_ids()
    assert bad[0]["id"] not in scene.bob.store.list_records()
    with pytest.raises(FileNotFound):
        scene.bob.get("evil.txt")


def test_header_must_match_the_records_file_name(scene: Scene) -> None:
    rows = commit_rows(scene.good_hash, scene.good_size)
    other = new_id()
    scene.put(f"records/{other}.jsonl", encode(rows))  # the header says rows[0]["id"]
    with pytest.raises(RecordsInvalid, match="header") as exc:
        scene.bob.pull()
    assert exc.value.commit_id == other
    scene.remove(f"records/{other}.jsonl")
    # a records file whose name is not a commit id at all
    scene.put("records/evil.jsonl", encode(commit_rows(scene.good_hash, scene.good_size)))
    with pytest.raises(RecordsInvalid, match=r"evil\.jsonl"):
        scene.bob.pull()
    assert [f.name for f in scene.bob.ls()] == ["a.txt"]


def test_a_crafted_hash_never_reaches_the_victims_files(scene: Scene, tmp_path: Path) -> None:
    """Even a catalog that already holds a crafted hash (pulled before this check) cannot read or push the file."""
    bob = scene.bob
    now = dt.datetime.now(dt.timezone.utc)
    commit = Commit(id=new_id(), created_at=now, kind="create")
    # objects/00/../../../id_ed25519 is the victim's file, in few enough characters for PostgreSQL's hash column
    crafted = "00/../../../" + os.path.basename(scene.victim_file)
    os.makedirs(os.path.join(bob.cache.root, "objects", "00"), exist_ok=True)  # as in any lake with 256+ objects
    assert os.path.samefile(os.path.join(bob.cache.root, "objects", crafted), scene.victim_file)
    commit.files.append({"id": new_id(), "name": "evil.txt", "version": 1, "hash": crafted,
                         "size": len(SECRET), "created_at": now, "run_id": None, "kind": "object", "uri": None,
                         "commit_id": commit.id})
    bob.catalog.replay([commit])  # as an older limnos would have imported it
    evil = bob.get("evil.txt")
    for read in (evil.read_bytes, evil.local_path, lambda: bob.checkout("evil.txt", str(tmp_path / "out"))):
        with pytest.raises(IntegrityError, match="not an object hash"):
            read()
    with pytest.raises((IntegrityError, RemoteError)):
        bob.push()
    remote_bytes = [scene.remote.fs.cat_file(k) for k in scene.remote.fs.find(scene.remote.root)]
    assert not any(SECRET in data for data in remote_bytes)


@pytest.mark.parametrize("bad", ["00/" + "/etc/passwd", "../" * 3 + "x" * 55, "A" * 64, "a" * 63, "", "a" * 64 + "/",
                                 None, 42])
def test_stores_refuse_anything_but_a_digest(tmp_path: Path, bad: Any) -> None:
    local = LocalObjectStore(str(tmp_path / "store"))
    remote = ObjectStore(str(tmp_path / "remote"))
    for call in (local.path, local.object_key, local.has, remote.object_key, remote.has):
        with pytest.raises(IntegrityError):
            call(bad)
    digest = "ab" * 32
    assert local.path(digest).endswith(f"objects/ab/{'ab' * 31}") and remote.object_key(digest).endswith(digest[2:])


# ------------------------------------------------------------------- packs
@pytest.fixture(params=["folder", "moto"])
def packed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[limnos.Lake, limnos.Lake, ObjectStore, str]]:
    """Alice pushed 12 small files (one pack); Bob imported the records only. Returns (alice, bob, remote, pack id)."""
    url, options = _remote_url(request.param, tmp_path, request)
    alice = limnos.init(str(tmp_path / "alice" / ".limnos"))
    alice.remotes.add("origin", url, **options)
    for i in range(12):
        with alice.create(f"p/{i}.txt") as w:
            w.write_bytes(f"packed object {i}".encode() * 10)
    alice.push()
    remote = ObjectStore(url, **options)
    packs = [k.rsplit("/", 1)[-1] for k in remote.fs.find(f"{remote.root}/packs")]
    pack_id = next(p[: -len(".idx")] for p in packs if p.endswith(".idx"))
    bob = limnos.init(str(tmp_path / "bob" / ".limnos"))
    bob.remotes.add("origin", url, **options)
    bob.pull(download=False)
    yield alice, bob, remote, pack_id
    alice.close()
    bob.close()


def _index(remote: ObjectStore, pack_id: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(remote.fs.cat_file(f"{remote.root}/packs/{pack_id}.idx"))
    return doc


def _write_index(remote: ObjectStore, pack_id: str, doc: Any) -> None:
    data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    remote.fs.pipe_file(f"{remote.root}/packs/{pack_id}.idx", data)


def _entry(field: int, value: Any) -> Callable[[dict[str, Any]], Any]:
    def mutate(doc: dict[str, Any]) -> Any:
        doc["objects"][0][field] = value
        return doc

    return mutate


INDEX_CASES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "not-json": lambda doc: b"{not json",
    "not-utf8": lambda doc: b"\xff\xfe",
    "a-list": lambda doc: doc["objects"],
    "no-objects": lambda doc: {"format": 1},
    "objects-not-list": lambda doc: {"format": 1, "objects": {"a": 1}},
    "entry-short": lambda doc: {"format": 1, "objects": [e[:2] for e in doc["objects"]]},
    "entry-not-list": lambda doc: {"format": 1, "objects": ["x" for _ in doc["objects"]]},
    "hash-traversal": _entry(0, "00/../../../etc/passwd"),
    "hash-uppercase": lambda doc: _entry(0, doc["objects"][0][0].upper())(doc),
    "offset-text": _entry(1, "0"),
    "offset-negative": _entry(1, -5),
    "offset-float": _entry(1, 1.5),
    "size-huge": _entry(2, 10**20),
    "beyond-pack": lambda doc: _entry(1, sum(e[2] for e in doc["objects"]))(doc),
    "format-text": lambda doc: {**doc, "format": "1"},
    "format-newer": lambda doc: {**doc, "format": 99},
}


def _pull_and_read(bob: limnos.Lake) -> list[str]:
    """Every way the objects come down: one lazy read (a ranged read), then a pull (the whole pack)."""
    seen = []
    for action in (lambda: bob.get("p/0.txt").read_bytes(), lambda: bob.get("p/5.txt").read_bytes(), bob.pull):
        try:
            action()
            seen.append("ok")
        except (IntegrityError, RemoteError) as exc:
            seen.append(f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # the escape is the failure being tested
            seen.append(f"RAW {type(exc).__name__}: {exc}")
    return seen


def test_bad_pack_indexes_raise_clear_errors(packed: tuple[limnos.Lake, limnos.Lake, ObjectStore, str]) -> None:
    _alice, bob, remote, pack_id = packed
    original = _index(remote, pack_id)
    wrong = []
    for case, mutate in INDEX_CASES.items():
        _write_index(remote, pack_id, mutate(json.loads(json.dumps(original))))
        bob.remotes.get("origin").store._packs.clear()  # a fresh reader of the remote
        for outcome in _pull_and_read(bob):
            if outcome.startswith("RAW") or outcome == "ok" or f"{pack_id}.idx" not in outcome:
                wrong.append(f"{case}: {outcome[:300]}")
        assert list(bob.cache.iter_objects()) == [], case  # nothing was kept from a bad index
    assert wrong == [], "\n".join(wrong)
    _write_index(remote, pack_id, original)
    bob.remotes.get("origin").store._packs.clear()
    bob.pull()
    assert bob.get("p/11.txt").read_bytes() == b"packed object 11" * 10


@pytest.mark.parametrize("damage", ["missing", "truncated", "flipped", "truncated-after-listing"])
def test_broken_packs_raise_clear_errors(packed: tuple[limnos.Lake, limnos.Lake, ObjectStore, str], damage: str) -> None:
    alice, bob, remote, pack_id = packed
    key = f"{remote.root}/packs/{pack_id}.pack"
    data = bytes(remote.fs.cat_file(key))
    if damage == "truncated-after-listing":
        bob.remotes.get("origin").store.pack_index(refresh=True)  # Bob has read the index: the pack then shrinks
    if damage == "missing":
        remote.fs.rm_file(key)
    elif damage.startswith("truncated"):
        remote.fs.pipe_file(key, data[: len(data) // 3])
    else:
        remote.fs.pipe_file(key, bytes(b ^ 0xFF for b in data))  # every object in it damaged
    outcomes = _pull_and_read(bob)
    assert not any(o.startswith("RAW") for o in outcomes), outcomes
    # the pull needs the whole pack; a ranged read of an object before the cut may still be whole
    must_fail = outcomes[-1:] if damage == "truncated-after-listing" else outcomes
    assert "ok" not in must_fail, outcomes
    assert all(pack_id in o for o in outcomes if o != "ok"), outcomes
    for digest in (o.hash for o in bob.cache.iter_objects()):  # whatever was kept is an intact object
        assert digest in {f.hash for f in alice.ls("p/")} and hashing.hash_file(bob.cache.path(digest))[0] == digest


#: cases only the catalog can judge (references, key types, ids in use) or only the import (the file's name)
NEEDS_CATALOG = {"meta-key-type-clash", "meta-dangling-file", "file-dangling-run", "tombstone-dangling",
                 "step-output-dangling", "datapoint-dangling", "reused-file-id"}


def test_the_records_parser_refuses_every_crafted_row(scene: Scene) -> None:
    """``Commit.from_jsonl`` is the one parse entry, local or remote: each field-level case fails there."""
    for case, mutate in CASES.items():
        if case in NEEDS_CATALOG:
            continue
        rows = commit_rows(scene.good_hash, scene.good_size)
        crafted = mutate(rows, scene)
        data = crafted if isinstance(crafted, bytes) else encode(crafted)
        with pytest.raises((RecordsDamaged, CatalogVersionError, ValueError, RecursionError)) as exc:
            Commit.from_jsonl(data)
        if case.endswith("format-newer"):
            assert isinstance(exc.value, CatalogVersionError), case  # refused with "upgrade limnos"
        elif not case.startswith(("not-", "deep")):
            # the seal and structure checks (RecordsDamaged) or the field checks (RecordsInvalid, a kind of it)
            assert isinstance(exc.value, RecordsDamaged), case
        assert "\x1b" not in str(exc.value) and "\u202e" not in str(exc.value), case


def test_a_crafted_local_records_file_is_not_rolled_forward(scene: Scene) -> None:
    """A crafted file dropped into the local records folder is skipped by roll-forward; the lake opens."""
    bob = scene.bob
    for case in ("hash-path-traversal", "size-huge", "version-text", "file-id-null", "name-dotdot", "name-esc"):
        rows = commit_rows(scene.good_hash, scene.good_size)
        crafted = CASES[case](rows, scene)
        bob.store.write_record(rows[0]["id"], crafted if isinstance(crafted, bytes) else encode(crafted))
    report = roll_forward(bob, grace=0)
    assert report.rolled_forward == [] and len(report.notes) == 6
    bob.close()
    again = limnos.open(scene.bob_path)
    try:
        assert [f.name for f in again.ls()] == ["a.txt"]
    finally:
        again.close()


def test_the_cli_pull_refuses_in_one_escaped_line(scene: Scene) -> None:
    from typer.testing import CliRunner

    from limnos.cli.app import app

    rows = commit_rows(scene.good_hash, scene.good_size, name="evil\x1b]0;owned\x07.txt")
    scene.put(f"records/{rows[0]['id']}.jsonl", encode(rows))
    scene.bob.close()
    result = CliRunner().invoke(app, ["pull"], env={"LIMNOS_LAKE": scene.bob_path})
    assert result.exit_code == 1, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "records" in lines[0] and rows[0]["id"] in lines[0]
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
