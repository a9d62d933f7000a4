"""The version of i2i (its own module, so that anything in the package can read it without importing
the package root; pyproject.toml reads it from here)."""
__version__ = "0.1.0"
