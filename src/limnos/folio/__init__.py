"""Folios: bundles of metadata, included items and references (datafolio's model).

:mod:`.folio` (the :class:`~limnos.folio.folio.Folio`), :mod:`.archive` (the portable
tar archive, read item by item with range requests), :mod:`.in_lake` (saving a folio
into a lake as files, and loading it back).
"""
