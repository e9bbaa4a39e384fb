"""tf.data and Hugging Face datasets over datasource results, and the audio and video tensorizers.

Real files every time: PNG images drawn here, WAV and FLAC written by
soundfile, a lossless FFV1 video encoded by PyAV, so each decoded sample and
pixel is compared with what was written. TensorFlow (1.3 GB) is not in the dev
extra: without it its tests skip with the install command, except under
LIMNOS_REQUIRE_TF=1 (CI), where they fail. datasets, soundfile and PyAV are in
the dev extra; they skip likewise outside CI.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from limnos.errors import FieldNotFound, InvalidName, LimnosError, MetadataError, MissingExtra

N = 7
REQUIRE_TF = os.environ.get("LIMNOS_REQUIRE_TF") == "1"
IN_CI = bool(os.environ.get("CI"))


def need(module: str, install: str, required: bool) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        reason = f"{module} is not installed ({exc}); install it with: .venv/bin/pip install {install}"
        if required:
            pytest.fail(reason + " (required here)")
        pytest.skip(reason)


@pytest.fixture
def tf() -> ModuleType:
    return need("tensorflow", "tensorflow-cpu", REQUIRE_TF)


@pytest.fixture
def hf() -> ModuleType:
    return need("datasets", "datasets", IN_CI)


@pytest.fixture
def images(sqlite_lake, tmp_path):  # type: ignore[no-untyped-def]
    """A datasource over N small images, each labelled (label, score, title, a blob)."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(N):
        Image.new("RGB", (6, 4), (i * 30, 255 - i, 7)).save(folder / f"{i}.png")
    ds = sqlite_lake.datasource("imgs", str(folder), scan=True)
    with ds.metadata_context() as ctx:
        for i in range(N):
            ctx.update_metadata(f"{i}.png", {"label": i % 3, "score": i / 2, "title": f"n{i}", "mask": bytes([i, i]),
                                             "extra": {"k": i}})
    return ds


def pixel(i: int) -> list[int]:
    return [i * 30, 255 - i, 7]


# ---------------------------------------------------------------- TensorFlow
@pytest.mark.parametrize("strategy", ["lazy", "background", "preload"])
def test_tf_dataset_round_trip(tf, images, strategy) -> None:  # type: ignore[no-untyped-def]
    dataset = images.all().as_ml_dataset("tensorflow", metadata_columns=["label", "score", "title"], strategy=strategy)
    assert isinstance(dataset, tf.data.Dataset) and len(dataset) == N
    image_spec, label_spec, score_spec, title_spec = dataset.element_spec
    assert image_spec.dtype == tf.uint8 and image_spec.shape.rank == 3
    assert (label_spec.dtype, score_spec.dtype, title_spec.dtype) == (tf.int64, tf.float64, tf.string)
    for _epoch in range(2):  # a tf.data.Dataset is iterated once per epoch
        seen = [(img.numpy(), int(label), float(score), title.numpy()) for img, label, score, title in dataset]
        assert [s[0].shape for s in seen] == [(4, 6, 3)] * N  # H x W x C, TensorFlow's layout
        assert [s[0][0, 0].tolist() for s in seen] == [pixel(i) for i in range(N)]
        assert [s[1] for s in seen] == [i % 3 for i in range(N)]
        assert [s[2] for s in seen] == [i / 2 for i in range(N)]
        assert [s[3] for s in seen] == [f"n{i}".encode() for i in range(N)]


def test_tf_dataloader_batches_and_trains_a_keras_layer(tf, images) -> None:  # type: ignore[no-untyped-def]
    loader = images.all().as_ml_dataloader("tensorflow", metadata_columns=["label"], batch_size=3)
    batches = list(loader)
    assert [tuple(b[0].shape) for b in batches] == [(3, 4, 6, 3), (3, 4, 6, 3), (1, 4, 6, 3)]
    assert [int(v) for b in batches for v in b[1]] == [i % 3 for i in range(N)]
    shuffled = images.all().as_ml_dataloader("tensorflow", metadata_columns=["label"], batch_size=N, shuffle=True, seed=1)
    (batch,) = list(shuffled)
    assert sorted(int(v) for v in batch[1]) == sorted(i % 3 for i in range(N))
    # Dataset options and loader options mixed, the file alone: a single tensor per element.
    (only,) = list(images[images["label"] == 1].all().as_ml_dataloader("tensorflow", batch_size=5, strategy="preload"))
    assert tuple(only.shape) == (2, 4, 6, 3)
    with pytest.raises(LimnosError, match="unknown TensorFlow loader options num_workers"):
        images.all().as_ml_dataloader("tensorflow", batch_size=2, num_workers=2)


def test_tf_tensorizers_blobs_json_and_callables(tf, images) -> None:  # type: ignore[no-untyped-def]
    result = images[images["path"] == "2.png"].all()
    ((raw, mask, extra),) = list(result.as_ml_dataset("tensorflow", metadata_columns=["mask", "extra"],
                                                      tensorizers=["raw", "auto", "auto"]))
    assert raw.dtype == tf.string and raw.numpy()[:8] == b"\x89PNG\r\n\x1a\n"
    assert mask.numpy() == b"\x02\x02" and extra.numpy() == b'{"k": 2}'
    ((size, doubled),) = list(result.as_ml_dataset("tensorflow", metadata_columns=["score"],
                                                 tensorizers=[lambda f: len(f.read()), lambda v: [v, v]]))
    assert int(size) == os.path.getsize(result[0].local_path()) and doubled.numpy().tolist() == [1.0, 1.0]
    with pytest.raises(LimnosError, match="unknown tensorizer 'nope'"):
        result.as_ml_dataset("tensorflow", tensorizers="nope")
    with pytest.raises(LimnosError, match="give 2"):
        result.as_ml_dataset("tensorflow", metadata_columns=["label"], tensorizers=["image"])


def test_tf_empty_missing_values_and_escaping_paths(tf, images, tmp_path) -> None:  # type: ignore[no-untyped-def]
    empty = images[images["label"] == 99].all().as_ml_dataset("tensorflow", metadata_columns=["label"], strategy="preload")
    assert len(empty) == 0 and list(empty) == []
    # No file to look at: the file column is raw bytes; a metadata column's type comes from its field.
    assert empty.element_spec[0].dtype == tf.string and empty.element_spec[1].dtype == tf.int64
    images.delete_metadata("5.png", "label")
    with pytest.raises(MetadataError, match=r"'5\.png' has no value for 'label'"):
        images.all().as_ml_dataset("tensorflow", metadata_columns=["label"])
    result = images.all()
    result.datapoints[0].path = "../../escape.png"
    with pytest.raises(InvalidName, match="outside"):
        result.as_ml_dataset("tensorflow", savedir=tmp_path / "inner")
    assert not (tmp_path / "inner").exists() and not (tmp_path / "escape.png").exists()


def test_without_tensorflow_the_error_gives_the_install_hint(images, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # import tensorflow now raises ImportError
    with pytest.raises(MissingExtra, match=r"pip install 'limnos\[tensorflow\]'"):
        images.all().as_ml_dataset("tensorflow")
    with pytest.raises(MissingExtra, match=r"limnos\[tensorflow\]"):
        images.all().as_ml_dataloader("tf", batch_size=2)


# -------------------------------------------------------------- Hugging Face
def test_hf_dataset_has_images_and_typed_metadata_columns(hf, images) -> None:  # type: ignore[no-untyped-def]
    images.delete_metadata("4.png", "score")
    dataset = images.all().as_hf_dataset()
    assert isinstance(dataset, hf.Dataset) and dataset.num_rows == N
    assert isinstance(dataset.features["image"], hf.Image)
    assert dataset.features["label"].dtype == "int64" and dataset.features["score"].dtype == "float64"
    assert dataset.features["mask"].dtype == "binary" and dataset.features["modified"].dtype.startswith("timestamp")
    assert dataset["path"] == [f"{i}.png" for i in range(N)]
    assert dataset["label"] == [i % 3 for i in range(N)]
    assert dataset["score"][4] is None and dataset["score"][3] == 1.5  # a missing value is None
    assert dataset["mask"][2] == b"\x02\x02" and dataset["extra"][2] == '{"k": 2}'
    row = dataset[3]
    assert row["image"].size == (6, 4) and list(row["image"].convert("RGB").getpixel((0, 0))) == pixel(3)


def test_hf_dataset_embedded_survives_the_lake_and_picks_columns(hf, images, sqlite_lake, tmp_path) -> None:  # type: ignore[no-untyped-def]
    dataset = images[images["label"] == 1].all().as_hf_dataset(metadata_columns=["title"], embed=True)
    assert dataset.column_names == ["path", "image", "title"] and dataset["title"] == ["n1", "n4"]
    dataset.save_to_disk(str(tmp_path / "saved"))
    shutil.rmtree(tmp_path / "imgs")  # the bytes travel with the dataset, not by path
    loaded = hf.load_from_disk(str(tmp_path / "saved"))
    assert [list(img.convert("RGB").getpixel((0, 0))) for img in loaded["image"]] == [pixel(1), pixel(4)]
    with pytest.raises(FieldNotFound, match="no field 'nope'"):
        images.all().as_hf_dataset(metadata_columns=["nope"])


def test_hf_dataset_of_other_files_has_a_file_column(hf, sqlite_lake, tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("alpha")
    (folder / "b.bin").write_bytes(b"\x00\x01")
    ds = sqlite_lake.datasource("docs", str(folder), scan=True)
    dataset = ds.all().as_hf_dataset(metadata_columns=[])
    assert dataset.column_names == ["path", "file"]
    assert [Path(p).read_bytes() for p in dataset["file"]] == [b"alpha", b"\x00\x01"]
    assert ds.all().as_hf_dataset(metadata_columns=[], embed=True)["file"] == [b"alpha", b"\x00\x01"]


def test_without_datasets_the_error_gives_the_install_hint(images, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(MissingExtra, match=r"pip install 'limnos\[hf\]'"):
        images.all().as_hf_dataset()


# ------------------------------------------------------------- audio, video
@pytest.fixture
def media(sqlite_lake, tmp_path):  # type: ignore[no-untyped-def]
    """A datasource of two sounds (WAV float, FLAC 16-bit) and one of a lossless 3-frame video."""
    soundfile = need("soundfile", "soundfile", IN_CI)
    av = need("av", "av", IN_CI)
    sounds = tmp_path / "sounds"
    sounds.mkdir()
    t = np.arange(800, dtype=np.float32) / 8000
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), 0.5 * np.cos(2 * np.pi * 220 * t)], axis=1).astype(np.float32)
    soundfile.write(sounds / "a.wav", stereo, 8000, subtype="FLOAT")
    soundfile.write(sounds / "b.flac", stereo[:400], 8000, subtype="PCM_16")
    clips = tmp_path / "clips"
    clips.mkdir()
    frames = [np.full((16, 32, 3), (i * 40, 100, 200 - i * 30), dtype=np.uint8) for i in range(3)]
    frames[1][0, 0] = (255, 0, 0)
    with av.open(str(clips / "c.mkv"), "w") as container:
        stream = container.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 16, "bgr0"  # lossless RGB
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return (sqlite_lake.datasource("sounds", str(sounds), scan=True), stereo,
            sqlite_lake.datasource("clips", str(clips), scan=True), np.stack(frames))


def test_audio_and_video_tensorizers_in_torch_and_tensorflow(media) -> None:  # type: ignore[no-untyped-def]
    sounds, stereo, clips, frames = media
    torch = need("torch", "torch==2.13.0", os.environ.get("LIMNOS_REQUIRE_TORCH") == "1")
    wav, flac = (item[0] for item in sounds.all().as_ml_dataset("torch"))  # auto: audio by extension
    assert wav.dtype == torch.float32 and tuple(wav.shape) == (2, 800)  # channels x frames, as torchaudio
    np.testing.assert_array_equal(wav.numpy(), stereo.T)
    np.testing.assert_allclose(flac.numpy(), stereo[:400].T, atol=1 / 32768)
    (video,) = clips.all().as_ml_dataset("torch")[0]
    assert video.dtype == torch.uint8 and tuple(video.shape) == (3, 3, 16, 32)  # T x C x H x W
    np.testing.assert_array_equal(video.permute(0, 2, 3, 1).numpy(), frames)

    tf = need("tensorflow", "tensorflow-cpu", REQUIRE_TF)
    tf_wav = next(iter(sounds.all().as_ml_dataset("tensorflow")))
    assert tf_wav.dtype == tf.float32 and tuple(tf_wav.shape) == (800, 2)  # frames x channels, as tf.audio
    np.testing.assert_array_equal(tf_wav.numpy(), stereo)
    tf_video = next(iter(clips.all().as_ml_dataset("tensorflow")))
    assert tf_video.dtype == tf.uint8 and tuple(tf_video.shape) == (3, 16, 32, 3)
    np.testing.assert_array_equal(tf_video.numpy(), frames)


def test_bytes_that_are_no_media_fail_with_the_decoders_errors(media, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import av
    import soundfile

    from limnos.datasources.ml_base import decode_audio, decode_video

    (tmp_path / "x.mp4").write_bytes(b"not a video at all" * 10)
    with pytest.raises(av.error.InvalidDataError), open(tmp_path / "x.mp4", "rb") as f:
        decode_video(f)
    sounds = media[0]
    with pytest.raises(LimnosError, match="no video stream"), open(sounds.all()[0].local_path(), "rb") as f:
        decode_video(f)  # a WAV has an audio stream only
    with pytest.raises(soundfile.LibsndfileError), open(tmp_path / "x.mp4", "rb") as f:
        decode_audio(f)


def test_without_soundfile_or_av_the_error_names_the_extra(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from limnos.datasources.ml_base import decode_audio, decode_video

    monkeypatch.setitem(sys.modules, "soundfile", None)
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(MissingExtra, match=r"limnos\[audio\]"):
        decode_audio(b"RIFF")
    with pytest.raises(MissingExtra, match=r"limnos\[video\]"):
        decode_video(b"\x00")
