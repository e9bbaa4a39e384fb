"""The lake's operations, one module each, behind the methods of :class:`limnos.Lake`.

``add`` (add and status), ``query``, ``lineage``, ``rm`` (rm, lock, unlock),
``sync`` (push and pull), ``cache`` (size and prune of a remote lake's cache),
``fsck``, ``gc`` and ``reindex``. Each takes a :class:`~limnos.core.base.LakeBase`
and uses only its public methods.
"""
