#!/usr/bin/env python
"""Download a public pix2pix/CycleGAN dataset: ``python tools/download_dataset.py NAME [--root datasets] [--force]``.

See ``datasets/README.md`` for the names and the layouts they unpack to.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from i2i.cli.download import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
