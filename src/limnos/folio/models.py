"""Model items: what limnos trusts when it loads a model from a folio it did not build.

Loading a pickle (joblib) runs whatever code the file names, so a joblib model
from a saved folio loads only with ``trusted=True``. A skops file is a tree of
typed nodes; skops builds only the types it is told to trust and refuses the
rest. limnos trusts exactly:

* **skops' own default list** (``skops.io``): Python's primitives and
  containers, numpy arrays, dtypes, ufuncs and bit generators, scipy sparse
  matrices and ufuncs, every public scikit-learn estimator, and the
  scikit-learn loss, link and binning types of gradient boosting;
* **plus** :data:`CHECKED_TYPES`: ``sklearn.tree._tree.Tree``, the node
  storage of every decision tree, random forest, extra trees, isolation forest
  and gradient boosting model. skops builds it without running code, but does
  not trust it by default because its node arrays hold raw indices that
  scikit-learn follows without bounds checks (a crafted file could make
  ``predict`` read outside memory). limnos checks them after loading and before
  handing out the model: every split node's children are later nodes of the
  same tree (so no loop), leaves have no children, every split feature is a
  column the tree's estimator validates at predict time, and a tree inside an
  ensemble sees no more columns than the ensemble checks. A tree that fails
  any check refuses the whole model with :class:`~limnos.errors.UntrustedModel`.

Anything else (your own classes, functions, ``TreePredictor`` of
HistGradientBoosting, whose node arrays limnos does not check) still needs
``get_model(name, trusted=True)``.
"""

from __future__ import annotations

import gc
import types
from typing import Any

from ..errors import MissingExtra, UntrustedModel, redact_url

#: Types limnos trusts beyond skops' defaults, each checked after loading (see the module text).
CHECKED_TYPES = ("sklearn.tree._tree.Tree",)
_TREE_LEAF = -1


def require(module: str, what: str) -> Any:
    """Import ``module``, or say which package ``what`` needs.

    Raises:
        MissingExtra: the module is not installed.
    """
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise MissingExtra(f"{what} needs {module.split('.')[0]}, which is not installed; run: pip install "
                           f"{module.split('.')[0]}") from None


def load_skops(path: str, name: str, source: str | None, trusted: bool) -> Any:
    """A skops model from ``path``: skops' trusted types plus :data:`CHECKED_TYPES` (checked), or all if ``trusted``.

    Raises:
        UntrustedModel: the file names a type outside that list, or a checked type fails its checks.
    """
    sio = require("skops.io", "loading a skops model")
    untrusted = sio.get_untrusted_types(file=path)
    checked = [t for t in untrusted if t in CHECKED_TYPES]
    unknown = [t for t in untrusted if t not in CHECKED_TYPES]
    where = redact_url(source or "this folio")
    if unknown and not trusted:
        raise UntrustedModel(f"model {name!r} uses types limnos does not trust ({', '.join(unknown[:5])}); pass "
                             f"trusted=True only if you trust who made {where}", name=name)
    model = sio.load(path, trusted=untrusted or None)
    if checked and not trusted:
        problem = tree_problem(model)
        if problem:
            raise UntrustedModel(f"model {name!r} of {where} holds a malformed decision tree ({problem}); "
                                 "refusing it", name=name)
    return model


def load_joblib(path: str, name: str, source: str | None, trusted: bool) -> Any:
    """A joblib (pickle) model, only when ``trusted``: unpickling runs any code the file holds.

    Raises:
        UntrustedModel: ``trusted`` is False.
    """
    if not trusted:
        raise UntrustedModel(f"model {name!r} is a joblib pickle, and loading it runs any code it holds; pass "
                             f"trusted=True only if you trust who made {redact_url(source or 'this folio')}",
                             name=name)
    return require("joblib", "loading a joblib model").load(path)


def _skip(obj: Any) -> bool:
    """Objects whose references are not model state (types, modules, code) or that hold no objects."""
    return isinstance(obj, (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType,
                            types.CodeType, str, bytes, int, float, complex, bool)) or obj is None


def tree_problem(model: Any) -> str | None:
    """What is wrong with the first malformed ``sklearn.tree._tree.Tree`` reachable from ``model``, or None.

    Walks every object the model refers to (attributes, containers, object
    arrays), carrying the number of columns the nearest estimator validates.
    """
    import numpy as np
    from sklearn.tree._tree import Tree

    seen: set[int] = set()
    # (object, columns the nearest estimator checks, whether that estimator is an ensemble, that estimator)
    stack: list[tuple[Any, int | None, bool, Any]] = [(model, None, False, None)]
    while stack:
        obj, bound, in_ensemble, owner = stack.pop()
        if id(obj) in seen or _skip(obj):
            continue
        seen.add(id(obj))
        if isinstance(obj, Tree):
            problem = _check_tree(obj, bound, owner)
            if problem:
                return problem
            continue
        if isinstance(obj, np.ndarray):
            if obj.dtype.hasobject:
                stack.extend((x, bound, in_ensemble, owner) for x in obj.flat)
            continue
        own = getattr(obj, "__dict__", {}).get("n_features_in_") if not isinstance(obj, dict) else None
        if isinstance(own, (int, np.integer)):
            own = int(own)
            if in_ensemble and bound is not None and own > bound:
                return f"an estimator inside an ensemble expects {own} columns, the ensemble checks {bound}"
            bound, owner = own, obj
            in_ensemble = "estimators_" in obj.__dict__
        stack.extend((ref, bound, in_ensemble, owner) for ref in gc.get_referents(obj))
    return None


def _check_tree(tree: Any, bound: int | None, owner: Any) -> str | None:
    import numpy as np

    n = int(tree.node_count)
    left, right, feature = (np.asarray(a) for a in (tree.children_left, tree.children_right, tree.feature))
    if n < 1 or len(left) != n or len(right) != n or len(feature) != n or np.asarray(tree.value).shape[0] != n:
        return "its node arrays do not match its node count"
    n_features = int(tree.n_features)
    if owner is not None and getattr(owner, "tree_", None) is tree and n_features != bound:
        return f"the tree reads {n_features} columns but its estimator checks {bound}"
    columns = n_features if bound is None else min(n_features, bound)
    leaf = left == _TREE_LEAF
    if not np.array_equal(leaf, right == _TREE_LEAF):
        return "a node has one child"
    index = np.arange(n)
    split = ~leaf
    if ((left[split] <= index[split]) | (left[split] >= n) | (right[split] <= index[split]) | (right[split] >= n)).any():
        return "a child index points outside the tree or back up it"
    if ((feature[split] < 0) | (feature[split] >= columns)).any():
        return f"a split reads a column outside the {columns} it has"
    return None


__all__ = ["CHECKED_TYPES", "load_joblib", "load_skops", "require", "tree_problem"]
