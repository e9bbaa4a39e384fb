"""torch datasets and dataloaders over a datasource query result.

``result.as_ml_dataset("torch", metadata_columns=["label"], strategy="background")``
gives a ``torch.utils.data.Dataset`` whose item ``i`` is a list: the
datapoint's file as a tensor, then one tensor per metadata column. Strategies
and options are described in :mod:`limnos.datasources.ml`.

Tensorizers, in torch's layouts: ``"image"`` (uint8 ``C x H x W``),
``"audio"`` (float32 ``channels x frames``, as torchaudio), ``"video"`` (uint8
``T x C x H x W``), ``"numeric"`` (a 0-d tensor), ``"text"`` and ``"raw"``
(bytes as a uint8 vector), ``"none"``, or any callable (it gets an open binary
file for the file column, the value for a metadata column).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import LimnosError, require_extra
from .ml_base import (
    DatapointSource,
    auto_field_kind,
    auto_file_kind,
    decode_audio,
    decode_image,
    decode_video,
    read_bytes,
    tensorizer_specs,
    unknown_tensorizer,
)

if TYPE_CHECKING:
    from torch.utils.data import Dataset

    from .results import QueryResult

    _Base = Dataset[list[Any]]
else:
    try:  # a real torch Dataset when torch is installed; as_dataset() asks for it otherwise
        from torch.utils.data import Dataset as _Base
    except ImportError:  # pragma: no cover - exercised only without torch
        _Base = object


# ---------------------------------------------------------------- tensorizers
def image_tensor(value: Any) -> Any:
    """An image (open file, path or bytes) as a uint8 tensor of shape C x H x W."""
    import torch

    return torch.from_numpy(decode_image(value)).permute(2, 0, 1).contiguous()


def audio_tensor(value: Any) -> Any:
    """Audio (open file, path or bytes; decoded by soundfile) as a float32 tensor of shape channels x frames."""
    import torch

    return torch.from_numpy(decode_audio(value).T.copy())


def video_tensor(value: Any) -> Any:
    """A video (open file, path or bytes; decoded by PyAV) as a uint8 tensor of shape T x C x H x W."""
    import torch

    return torch.from_numpy(decode_video(value)).permute(0, 3, 1, 2).contiguous()


def numeric_tensor(value: Any) -> Any:
    """A number, bool or datetime (as POSIX seconds) as a 0-d tensor."""
    import datetime as dt

    import torch

    if isinstance(value, dt.datetime):
        value = value.timestamp()
    if isinstance(value, (bytes, str)) or hasattr(value, "read"):
        value = float(read_bytes(value).decode().strip())
    return torch.tensor(value)


def text_tensor(value: Any) -> Any:
    """Text (str, bytes or an open file) as its UTF-8 bytes in a uint8 tensor."""
    import torch

    data = value.encode() if isinstance(value, str) else read_bytes(value)
    return torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.zeros(0, dtype=torch.uint8)


def raw_tensor(value: Any) -> Any:
    """Bytes (or an open file) as a uint8 tensor."""
    import torch

    data = read_bytes(value)
    return torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.zeros(0, dtype=torch.uint8)


def identity(value: Any) -> Any:
    """The value unchanged (the ``"none"`` tensorizer)."""
    return value


TENSORIZERS: dict[str, Callable[[Any], Any]] = {"image": image_tensor, "audio": audio_tensor, "video": video_tensor,
                                                 "numeric": numeric_tensor, "text": text_tensor, "raw": raw_tensor,
                                                 "bytes": raw_tensor, "none": identity}


def pick(spec: Any, auto: str) -> Callable[[Any], Any]:
    """The torch tensorizer for ``spec``: ``"auto"`` (then ``auto`` names it), a name, or a callable.

    Raises:
        LimnosError: an unknown name.
    """
    if spec == "auto":
        return TENSORIZERS[auto]
    if callable(spec):
        chosen: Callable[[Any], Any] = spec
        return chosen
    if isinstance(spec, str) and spec in TENSORIZERS:
        return TENSORIZERS[spec]
    raise unknown_tensorizer(spec)


# --------------------------------------------------------------------- dataset
class DatapointDataset(DatapointSource, _Base):
    """A torch Dataset over a query result: item i is [file tensor, *metadata column tensors]."""

    def __init__(self, result: QueryResult, metadata_columns: Sequence[str] = (), strategy: str = "lazy",
                 tensorizers: Any = "auto", savedir: str | os.PathLike[str] | None = None, jobs: int | None = None) -> None:
        """A dataset over ``result``'s datapoints, their files fetched by ``strategy`` (see :mod:`limnos.datasources.ml`).

        Raises:
            LimnosError: the strategy or tensorizers are unknown.
            FieldNotFound: a metadata column is no field of the datasource.
            InvalidName: with ``savedir``, a datapoint's path would land outside it.
        """
        columns = [metadata_columns] if isinstance(metadata_columns, str) else list(metadata_columns)
        for spec in tensorizer_specs(tensorizers, columns):  # a bad spec fails before any fetch starts
            pick(spec, "raw")
        DatapointSource.__init__(self, result, columns, strategy, savedir, jobs)
        self.set_tensorizers(tensorizers)

    def set_tensorizers(self, tensorizers: Any) -> None:
        """``"auto"``, one name or callable for every column, or a list: file column first, then each metadata column."""
        specs = tensorizer_specs(tensorizers, self.metadata_columns)
        autos = [auto_file_kind(self.paths)] + [auto_field_kind(self.column_types[c]) for c in self.metadata_columns]
        self.tensorizers = [pick(s, a) for s, a in zip(specs, autos, strict=True)]

    def __len__(self) -> int:
        return DatapointSource.__len__(self)

    def __getitem__(self, i: int) -> list[Any]:
        i = self.index(i)
        values = self.values(i)
        with open(self.local_path(i), "rb") as f:
            out = [self.tensorizers[0](f)]
        out += [tensorize(value) for value, tensorize in zip(values, self.tensorizers[1:], strict=True)]
        return out

    def __repr__(self) -> str:
        return f"<DatapointDataset {len(self)} items, {self.strategy}, columns={['file', *self.metadata_columns]}>"


def check_torch() -> None:
    """Fail with the install command when torch is missing.

    Raises:
        MissingExtra: torch is not installed.
    """
    require_extra("torch", "torch")


def dataloader(dataset: Any, options: dict[str, Any], **loader_options: Any) -> Any:
    """A ``torch.utils.data.DataLoader`` over ``dataset`` (a :class:`DatapointDataset` or any torch Dataset).

    ``options``: dataset options left over; only ``tensorizers`` still applies to a made dataset.

    Raises:
        LimnosError: other dataset options, which apply only when the dataset is made.
    """
    check_torch()
    if "tensorizers" in options and isinstance(dataset, DatapointDataset):
        dataset.set_tensorizers(options.pop("tensorizers"))
    if options:
        raise LimnosError(f"{', '.join(sorted(options))} apply when the dataset is made; pass them to as_ml_dataset")
    from torch.utils.data import DataLoader

    return DataLoader(dataset, **loader_options)


__all__ = ["TENSORIZERS", "DatapointDataset", "audio_tensor", "check_torch", "dataloader", "identity", "image_tensor",
           "numeric_tensor", "pick", "raw_tensor", "text_tensor", "video_tensor"]
