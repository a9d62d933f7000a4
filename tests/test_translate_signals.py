"""SIGTERM or SIGINT during i2i-translate: one line naming the signal, exit 128 + its number, every output written
is whole and no temporary file stays behind."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from i2i.data.io import read_image, write_image

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("sig, group", [(signal.SIGTERM, True), (signal.SIGINT, False)])
def test_a_signal_stops_translation_with_one_line_and_whole_files(tmp_path, sig, group):
    src, out = tmp_path / "in", tmp_path / "out"
    rng = np.random.default_rng(0)
    for i in range(400):
        write_image(src / f"{i:03d}.png", rng.integers(0, 256, (96, 96, 3), dtype=np.uint8))
    proc = subprocess.Popen([sys.executable, "-m", "i2i.cli.translate", "--method", "dcp", "--input", str(src),
                             "--output", str(out), "--workers", "2"], cwd=ROOT, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and len(list(out.glob("*.png"))) < 3:
            time.sleep(0.02)
        assert proc.poll() is None, "the translation ended before the signal"
        (os.killpg if group else os.kill)(proc.pid, sig)  # the whole group, decoding processes included, as a shell
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + int(sig), err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("translate:")
             and "\r" not in line]
    assert lines == [f"interrupted by {sig.name}: the outputs written into {out} are complete; run the command "
                     "again to translate the rest (existing outputs are kept)"], err
    written = sorted(p.name for p in out.iterdir() if p.name != ".i2i-translations")
    assert all(not n.startswith(".") for n in written), written  # no temporary file
    assert 3 <= len(written) < 400
    for name in written:
        assert read_image(out / name).shape == (96, 96, 3)
