"""Creating and finding lakes."""

from __future__ import annotations

import os

import pytest
import yaml

import limnos
from limnos.errors import LakeExists, LakeNotFound, MissingExtra, redact_url, require_extra


def test_open_finds_nearest_lake_in_parents(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "src" / "deep").mkdir(parents=True)
    lake = limnos.init(str(project / ".limnos"))
    with lake.create("a.txt") as w:
        w.write_text("a")
    lake.close()
    monkeypatch.chdir(project / "src" / "deep")
    found = limnos.open()
    assert found.path == str(project / ".limnos")
    assert found.get("a.txt").read_text() == "a"


def test_open_uses_env_then_errors(tmp_path, monkeypatch):
    lake = limnos.init(str(tmp_path / "elsewhere"))
    lake.close()
    with pytest.raises(LakeNotFound, match=r"limnos\.init\("):
        limnos.open()
    monkeypatch.setenv("LIMNOS_LAKE", str(tmp_path / "elsewhere"))
    assert limnos.open().path == str(tmp_path / "elsewhere")
    with pytest.raises(FileNotFoundError):  # LakeNotFound is a FileNotFoundError too
        limnos.open(str(tmp_path / "nothing"))


def test_open_accepts_the_project_folder(tmp_path):
    limnos.init(str(tmp_path / ".limnos")).close()
    assert limnos.open(str(tmp_path)).path == str(tmp_path / ".limnos")


def test_init_twice_refused(tmp_path):
    limnos.init(str(tmp_path / "l")).close()
    with pytest.raises(LakeExists):
        limnos.init(str(tmp_path / "l"))


def test_catalog_password_is_not_saved(tmp_path, pg_database):
    with_password = pg_database.replace("postgresql://postgres@", "postgresql://postgres:s3cr3t@")
    lake = limnos.init(str(tmp_path / "l"), catalog=with_password)
    with lake.create("a.txt") as w:
        w.write_text("a")
    lake.close()
    config = (tmp_path / "l" / "limnos.yaml").read_text()
    assert "s3cr3t" not in config and yaml.safe_load(config)["catalog"].startswith("postgresql://postgres@")
    for root, _, files in os.walk(tmp_path / "l"):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                assert b"s3cr3t" not in f.read()
    assert "s3cr3t" not in repr(lake) and "s3cr3t" not in repr(lake.catalog)
    reopened = limnos.open(str(tmp_path / "l"))  # trust auth: no password needed here
    assert reopened.get("a.txt").read_text() == "a"


def test_failed_init_leaves_nothing(tmp_path):
    with pytest.raises(limnos.CatalogError):
        limnos.init(str(tmp_path / "l"), catalog="mysql://nope")
    assert not (tmp_path / "l").exists()


def test_redaction_and_extras():
    assert redact_url("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
    assert redact_url("s3://bucket/x") == "s3://bucket/x"
    with pytest.raises(MissingExtra, match=r"pip install 'limnos\[torch\]'"):
        require_extra("not_a_real_module_xyz", "torch")
