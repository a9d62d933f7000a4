#!/usr/bin/env python
"""Train a translator: same as ``i2i-train``."""
import sys

from i2i.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
