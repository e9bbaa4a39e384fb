"""Folios in a lake: ``lake.save_folio(name, folio)`` and ``lake.get(name).folio()``.

A folio saved into a lake becomes lake files, built in one commit through the
kernel's :class:`~limnos.core.commits.CommitBuilder`:

* each **included item** (table, model, array, JSON, artifact, inner folio)
  is the file ``.folios/<folio name>/<item><ext>``. Identical bytes are one
  object whichever folios hold them, and re-saving an item unchanged under
  the same name makes no new version. An item's lineage inputs are the lake
  files among its declared ``inputs``;
* **references** stay where they are; one to a lake file makes that file an
  input of the folio;
* the **folio** itself is the file ``name``, whose content is the manifest
  (JSON, each included entry naming its item's file id). Its inputs are its
  items, the lake files it references and whatever the run read before; its
  metadata is the ``metadata`` argument, set like any file's.

Loading reads only the manifest: an item's bytes are read from the lake when
first used, and that read marks the item file as an input of the current run,
as any ``lake.get`` does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import FolioError, IntegrityError, LimnosError
from ..names import validate_name
from ..store.links import place
from .archive import validate_manifest
from .folio import Folio, item_bytes_path, item_extension, lake_folio, manifest_of

if TYPE_CHECKING:
    from ..core.base import LakeBase
    from ..core.files import File

#: Lake names of folio items: ``.folios/<folio name>/<item><ext>``.
ITEMS_PREFIX = ".folios"


def item_lake_name(folio_name: str, entry: Mapping[str, Any]) -> str:
    """The lake name of an included item, from its manifest entry: ``.folios/<folio name>/<item><ext>``."""
    return f"{ITEMS_PREFIX}/{folio_name}/{entry['name']}{item_extension(entry.get('format', ''), entry.get('suffix'))}"


def save_to_lake(lake: LakeBase, name: str, folio: Folio, metadata: Mapping[str, Any] | None = None) -> File:
    """Store a folio in a lake as the file ``name`` (see :meth:`limnos.Lake.save_folio`), in one commit.

    Args:
        lake: where to store it.
        name: the folio file's lake name; its items go under ``.folios/<name>/``.
        folio: the folio to store.
        metadata: metadata of the folio file.

    Returns:
        The folio file.

    Raises:
        InvalidName: ``name`` (or an item's lake name) is not a valid lake name.
        FolioError: ``folio`` is not a Folio, or its metadata is not JSON.
        MetadataError: ``metadata`` cannot be stored.
        IntegrityError: an item's bytes changed while they were stored; nothing was committed.
    """
    validate_name(name)
    if not isinstance(folio, Folio):
        raise FolioError(f"save_folio takes a Folio, not {type(folio).__name__}")
    lake.check_metadata(metadata)
    manifest = manifest_of(folio)
    item_names = {e["name"]: item_lake_name(name, e) for e in manifest["items"] if e["type"] != "reference"}
    for lake_name in item_names.values():
        validate_name(lake_name)
    latest = lake.catalog.latest_rows(list(item_names.values()))
    commit = lake.new_commit("folio")
    inputs: dict[str, None] = {}  # an ordered set of the folio file's inputs
    for entry in manifest["items"]:
        if entry["type"] == "reference":
            ref = entry.get("lake")
            if ref and lake.catalog.file_by_id(ref["id"]) is not None:
                inputs[ref["id"]] = None
            continue
        digest, size = _store_copy(lake, item_bytes_path(folio, entry["name"]))
        if digest != entry["hash"]:
            raise IntegrityError(f"item {entry['name']!r} changed while it was stored ({digest[:12]} != "
                                 f"{str(entry['hash'])[:12]}); nothing was committed")
        lake_name = item_names[entry["name"]]
        current = latest.get(lake_name)
        if current is not None and current.hash == digest:
            file_id = current.id  # the same bytes under the same name: no new version
        else:
            item_row = commit.add_file(lake_name, digest, size)
            commit.add_inputs(item_row["id"], _input_ids(lake, entry["inputs"]))
            file_id = item_row["id"]
        entry["file"] = file_id
        inputs[file_id] = None
    data = json.dumps(manifest, indent=1, ensure_ascii=False, allow_nan=True).encode("utf-8")
    staged = lake.staging_path(".json")
    with open(staged, "wb") as f:
        f.write(data)
    digest, size = lake.store_staged(staged)
    inputs.update(dict.fromkeys(lake.current_inputs()))
    row = commit.add_file(name, digest, size)
    commit.add_inputs(row["id"], list(inputs))
    commit.add_metadata([row["id"]], metadata)
    commit.write()
    return commit.file(row)


def _store_copy(lake: LakeBase, src: str) -> tuple[str, int]:
    """Store a copy of ``src`` (never the file itself: it may be a lake object or the user's working file)."""
    staged = lake.staging_path()
    os.unlink(staged)
    place(src, staged, "copy", readonly=False)
    return lake.store_staged(staged)


def _input_ids(lake: LakeBase, inputs: Sequence[Any]) -> list[str]:
    """The lake files among an item's inputs (ids, refs or names); other inputs (URLs, paths) are kept in the manifest only."""
    out: dict[str, None] = {}
    for value in inputs:
        ref = value.get("id") if isinstance(value, dict) else value
        if not isinstance(ref, str) or "://" in ref:
            continue
        try:
            out[lake.resolve(ref).id] = None
        except (LimnosError, ValueError):
            continue
    return list(out)


def load_from_file(file: File) -> Folio:
    """The folio a lake file holds (see :meth:`limnos.File.folio`); items are read from the lake when first used.

    Raises:
        FolioError: the file does not hold a lake folio's manifest (a folio archive is opened with ``Folio.load``).
    """
    try:
        manifest = json.loads(file.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise FolioError(f"{file.ref} is not a folio (its content is not a folio manifest)") from None
    validate_manifest(manifest, file.ref)
    for entry in manifest["items"]:
        if entry.get("member"):
            raise FolioError(f"{file.ref} is a folio archive, not a lake folio; open it with "
                             f"limnos.Folio.load(lake.get({file.ref!r}).local_path())")
    return lake_folio(manifest, file.ref, file.lake)


__all__ = ["ITEMS_PREFIX", "item_lake_name", "load_from_file", "save_to_lake"]
