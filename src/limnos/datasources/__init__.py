"""limnos.datasources."""
