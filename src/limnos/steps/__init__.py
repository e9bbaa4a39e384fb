"""limnos.steps."""
