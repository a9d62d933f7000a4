#!/usr/bin/env python
"""Translate a folder of images: same as ``i2i-translate``."""
import sys

from i2i.cli.translate import main

if __name__ == "__main__":
    sys.exit(main())
