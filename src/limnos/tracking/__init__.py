"""limnos.tracking."""
