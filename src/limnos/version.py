"""The version of limnos (one place: the package, provenance and the catalog read it here)."""

__version__ = "0.1.0"
