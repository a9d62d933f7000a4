#!/usr/bin/env python
"""Score generated images against targets: same as ``i2i-eval``."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from i2i.cli.eval import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
