"""limnos.ops."""
