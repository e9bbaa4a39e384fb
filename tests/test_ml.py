"""torch datasets and dataloaders over datasource results.

torch is an optional extra: without it these tests skip with the reason
shown, except under LIMNOS_REQUIRE_TORCH=1 (CI), where they fail.
"""

from __future__ import annotations

import importlib
import os
import sys

import pytest
from PIL import Image

from limnos.errors import FieldNotFound, InvalidName, LimnosError, MetadataError, MissingExtra

REQUIRE_TORCH = os.environ.get("LIMNOS_REQUIRE_TORCH") == "1"
N = 7


@pytest.fixture
def torch():  # type: ignore[no-untyped-def]
    try:
        return importlib.import_module("torch")
    except ImportError as exc:
        reason = f"torch is not installed ({exc}); install it with: .venv/bin/pip install torch==2.13.0"
        if REQUIRE_TORCH:
            pytest.fail(reason + " (LIMNOS_REQUIRE_TORCH=1)")
        pytest.skip(reason)


@pytest.fixture
def images(lake, tmp_path):  # type: ignore[no-untyped-def]
    """A datasource over N small images the test draws, each labelled."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(N):
        Image.new("RGB", (6, 4), (i * 30, 255 - i, 7)).save(folder / f"{i}.png")
    ds = lake.datasource("imgs", str(folder), scan=True)
    with ds.metadata_context() as ctx:
        for i in range(N):
            ctx.update_metadata(f"{i}.png", {"label": i % 3, "score": i / 2, "title": f"n{i}", "mask": bytes([i, i])})
    return ds


def pixel(i: int) -> list[int]:
    return [i * 30, 255 - i, 7]


@pytest.mark.parametrize("strategy", ["lazy", "background", "preload"])
@pytest.mark.parametrize("num_workers", [0, 2])
def test_strategies_with_and_without_workers(torch, images, strategy, num_workers) -> None:  # type: ignore[no-untyped-def]
    result = images.all()
    dataset = result.as_ml_dataset("torch", metadata_columns=["label", "score"], strategy=strategy)
    assert isinstance(dataset, torch.utils.data.Dataset) and len(dataset) == N
    image, label, score = dataset[3]
    assert image.dtype == torch.uint8 and tuple(image.shape) == (3, 4, 6)
    assert image[:, 0, 0].tolist() == pixel(3)
    assert label.item() == 0 and score.item() == pytest.approx(1.5)
    loader = result.as_ml_dataloader(dataset, batch_size=3, num_workers=num_workers, shuffle=False)
    seen_labels, seen_pixels = [], []
    for batch_images, batch_labels, _scores in loader:
        assert batch_images.shape[1:] == (3, 4, 6)
        seen_labels += batch_labels.tolist()
        seen_pixels += [img[:, 0, 0].tolist() for img in batch_images]
    assert seen_labels == [i % 3 for i in range(N)]
    assert seen_pixels == [pixel(i) for i in range(N)]
    dataset.close()


def test_dataloader_from_flavor_mixes_options(torch, images, tmp_path) -> None:  # type: ignore[no-untyped-def]
    loader = images[images["label"] == 1].all().as_ml_dataloader(
        "torch", metadata_columns=["title"], strategy="background", savedir=tmp_path / "saved", batch_size=2, num_workers=2)
    batches = list(loader)
    assert [name for b in batches for name in b[1]] == ["n1", "n4"]  # str columns stay str
    assert sorted(os.listdir(tmp_path / "saved")) == ["1.png", "4.png"]  # savedir holds the files


def test_tensorizers(torch, images) -> None:  # type: ignore[no-untyped-def]
    result = images[images["path"] == "2.png"].all()
    raw = result.as_ml_dataset("torch", metadata_columns=["mask", "title"], tensorizers=["raw", "raw", "text"])
    data, mask, name = raw[0]
    assert data.dtype == torch.uint8 and bytes(data.tolist())[:8] == b"\x89PNG\r\n\x1a\n"
    assert mask.tolist() == [2, 2] and bytes(name.tolist()) == b"n2"
    custom = result.as_ml_dataset("torch", metadata_columns=["score"],
                                  tensorizers=[lambda f: len(f.read()), lambda v: torch.tensor([v, v])])
    size, pair = custom[0]
    assert size == os.path.getsize(result[0].local_path()) and pair.tolist() == [1.0, 1.0]
    auto = result.as_ml_dataset("torch", metadata_columns=["mask", "label"])
    assert auto[0][1].tolist() == [2, 2] and auto[0][2].item() == 2
    with pytest.raises(LimnosError, match="give 3"):
        result.as_ml_dataset("torch", metadata_columns=["mask", "label"], tensorizers=["image"])
    with pytest.raises(LimnosError, match="unknown tensorizer"):
        result.as_ml_dataset("torch", tensorizers="nope")
    with pytest.raises(FieldNotFound):
        result.as_ml_dataset("torch", metadata_columns=["nope"])
    with pytest.raises(LimnosError, match="strategy"):
        result.as_ml_dataset("torch", strategy="eager")
    with pytest.raises(LimnosError, match="unknown ML flavor 'jax'; use 'torch' or 'tensorflow'"):
        result.as_ml_dataset("jax")


def test_empty_result_gives_an_empty_dataset(torch, images) -> None:  # type: ignore[no-untyped-def]
    empty = images[images["label"] == 99].all()
    for strategy in ("lazy", "background", "preload"):
        dataset = empty.as_ml_dataset("torch", metadata_columns=["label"], strategy=strategy)
        assert len(dataset) == 0
        assert list(empty.as_ml_dataloader(dataset, batch_size=4, num_workers=2)) == []
        with pytest.raises(IndexError):
            dataset[0]


def test_missing_values_and_escaping_paths(torch, images, tmp_path) -> None:  # type: ignore[no-untyped-def]
    images.delete_metadata("5.png", "label")
    dataset = images.all().as_ml_dataset("torch", metadata_columns=["label"])
    with pytest.raises(MetadataError, match="no value for 'label'"):
        dataset[5]
    assert len(dataset[4]) == 2
    result = images.all()
    result.datapoints[0].path = "../../escape.png"
    with pytest.raises(InvalidName, match="outside"):
        result.as_ml_dataset("torch", savedir=tmp_path / "inner")


def test_without_torch_the_error_gives_the_install_hint(images, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    with pytest.raises(MissingExtra, match=r"pip install 'limnos\[torch\]'"):
        images.all().as_ml_dataset("torch")
    with pytest.raises(MissingExtra, match="limnos"):
        images.all().as_ml_dataloader("torch", batch_size=2)
