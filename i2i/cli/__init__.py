"""Command-line entry points (i2i-train, i2i-translate, i2i-eval)."""
