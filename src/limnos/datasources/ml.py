"""Machine-learning exports of a datasource query result: torch, TensorFlow and Hugging Face datasets.

``result.as_ml_dataset(flavor, metadata_columns=["label"], strategy="background")``
gives a dataset whose item ``i`` is the datapoint's file as a tensor, then one
tensor per metadata column:

* ``"torch"``: a ``torch.utils.data.Dataset`` (:mod:`~limnos.datasources.ml_torch`);
  ``as_ml_dataloader`` wraps it in a ``DataLoader``;
* ``"tensorflow"`` (or ``"tf"``, ``"keras"``): a ``tf.data.Dataset`` of
  ``(file, *columns)`` tuples (:mod:`~limnos.datasources.ml_tf`);
  ``as_ml_dataloader("tensorflow", batch_size=...)`` batches and prefetches it.

``result.as_hf_dataset()`` gives a Hugging Face ``datasets.Dataset`` with an
``image`` column and one column per field (:mod:`~limnos.datasources.ml_hf`).

Strategies (when the bytes come to this machine), for every flavor:

* ``lazy``: each item fetches its file when it is asked for;
* ``background``: threads fetch every file ahead, in order; an item not yet
  fetched is fetched at once (or waited for, if a thread is on it);
* ``preload``: every file is fetched before the dataset is returned.

Files come through the lake's cache (verified by hash) or, for references,
straight from their folder or the reference cache; ``savedir=`` copies them
into a folder of your choice instead. Every strategy works with DataLoader
workers (``num_workers > 0``): a dataset pickles without its threads, and a
worker serves files already on disk and fetches the rest itself.

Tensorizers turn a column into a tensor, each flavor in its own layout:
``"image"`` (Pillow), ``"audio"`` (soundfile), ``"video"`` (PyAV),
``"numeric"``, ``"text"``, ``"raw"``, ``"none"``, or any callable (it gets an
open binary file for the file column, the value for a metadata column).
``"auto"`` picks by extension and field type.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import LimnosError
from .ml_base import DATASET_OPTIONS, STRATEGIES, check_options
from .ml_torch import (
    TENSORIZERS,
    DatapointDataset,
    audio_tensor,
    image_tensor,
    numeric_tensor,
    raw_tensor,
    text_tensor,
    video_tensor,
)

if TYPE_CHECKING:
    from .results import QueryResult

#: the flavors ``as_ml_dataset`` takes
FLAVORS = ("torch", "tensorflow", "tf", "keras")


def _flavor(flavor: str) -> str:
    """``torch`` or ``tensorflow``, after checking that its package is installed.

    Raises:
        LimnosError: an unknown flavor.
        MissingExtra: the flavor's package is not installed.
    """
    from . import ml_tf, ml_torch

    if flavor == "torch":
        ml_torch.check_torch()
        return "torch"
    if flavor in ml_tf.FLAVORS:
        ml_tf.check_tensorflow()
        return "tensorflow"
    raise LimnosError(f"unknown ML flavor {flavor!r}; use 'torch' or 'tensorflow'")


def as_dataset(result: QueryResult, flavor: str = "torch", **kwargs: Any) -> Any:
    """A dataset over ``result`` in ``flavor``; ``kwargs`` are its options (metadata_columns, strategy...).

    Raises:
        LimnosError: an option or the flavor is unknown.
        MissingExtra: the flavor's package (torch, tensorflow) is not installed.
    """
    options = check_options(kwargs)
    if _flavor(flavor) == "tensorflow":
        from .ml_tf import tf_dataset

        return tf_dataset(result, **options)
    return DatapointDataset(result, **options)


def as_dataloader(result: QueryResult, flavor_or_dataset: Any = "torch", **kwargs: Any) -> Any:
    """A torch ``DataLoader``, or a batched ``tf.data.Dataset``; dataset options and loader options may be mixed.

    Raises:
        LimnosError: an option or the flavor is unknown.
        MissingExtra: the flavor's package is not installed.
    """
    options = {k: kwargs.pop(k) for k in DATASET_OPTIONS if k in kwargs}
    if isinstance(flavor_or_dataset, str):
        flavor = _flavor(flavor_or_dataset)
        dataset = as_dataset(result, flavor, **options)
        options = {}
    else:
        dataset = flavor_or_dataset
        flavor = "tensorflow" if type(dataset).__module__.startswith("tensorflow") else "torch"
    if flavor == "tensorflow":
        if options:
            raise LimnosError(f"{', '.join(sorted(options))} apply when the dataset is made; pass them to as_ml_dataset")
        from .ml_tf import tf_loader

        return tf_loader(dataset, **kwargs)
    from .ml_torch import dataloader

    return dataloader(dataset, options, **kwargs)


def as_hf_dataset(result: QueryResult, **kwargs: Any) -> Any:
    """A Hugging Face ``datasets.Dataset`` over ``result`` (see :func:`limnos.datasources.ml_hf.hf_dataset`)."""
    from .ml_hf import hf_dataset

    return hf_dataset(result, **kwargs)


__all__ = ["FLAVORS", "STRATEGIES", "TENSORIZERS", "DatapointDataset", "as_dataloader", "as_dataset", "as_hf_dataset",
           "audio_tensor", "image_tensor", "numeric_tensor", "raw_tensor", "text_tensor", "video_tensor"]
