"""limnos.folio."""
