"""limnos.core."""
