"""tools/plot_metrics.py: curves of a run's metrics.jsonl as a PNG."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from i2i.data.io import read_image

SCRIPT = Path(__file__).resolve().parent.parent / "tools" / "plot_metrics.py"
spec = importlib.util.spec_from_file_location("plot_metrics", SCRIPT)
plot_metrics = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plot_metrics)


def write_run(run: Path) -> None:
    run.mkdir(parents=True)
    lines = []
    for step in range(1, 61):
        record = {"step": step, "train/G_gan": 1.0 / step, "train/D": 0.5 if step % 7 else float("nan"),
                  "train/note": "warmup", "train/flag": True}
        if step % 20 == 0:
            record.update({"eval/psnr": 20.0 + step / 20, "eval/fid": "inf"})
        lines.append(json.dumps(record))  # NaN is written as the bare token NaN
    lines[10] = lines[10].replace('"train/D": 0.5', '"train/D": Infinity')
    lines += ['{"train/G_gan": 3.0}', "", '{"step": 61, "train/G_']  # no step, blank, half-written
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")


def test_read_series_keeps_finite_numbers_only(tmp_path):
    write_run(tmp_path / "run")
    series, bad = plot_metrics.read_series(tmp_path / "run" / "metrics.jsonl")
    assert list(series) == ["train/G_gan", "train/D", "eval/psnr"]  # strings, bools and all-inf keys dropped
    assert bad == 2
    steps, values = series["train/G_gan"]
    assert steps.tolist() == list(range(1, 61)) and np.allclose(values, 1.0 / steps)
    assert len(series["train/D"][0]) == 60 - 8 - 1  # 8 NaN, 1 Infinity
    assert series["eval/psnr"][1].tolist() == [21.0, 22.0, 23.0]


def test_moving_average_counts_steps():
    steps = np.array([1.0, 2, 3, 4, 10, 20])
    values = np.array([1.0, 3, 5, 7, 9, 11])
    assert plot_metrics.moving_average(steps, values, 2).tolist() == [1, 2, 4, 6, 9, 11]


def test_nice_ticks():
    assert plot_metrics.nice_ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert plot_metrics.nice_ticks(-3.3, 17.0) == [0.0, 5.0, 10.0, 15.0]


def test_writes_one_panel_per_curve(tmp_path):
    write_run(tmp_path / "run")
    out = tmp_path / "curves.png"
    proc = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "run"), "--out", str(out), "--columns", "2",
                           "--smooth", "5"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "3 curve(s)" in proc.stderr and "skipped 2" in proc.stderr
    image = read_image(out)
    h, w = plot_metrics.PANEL_H, plot_metrics.PANEL_W
    assert image.shape == (2 * h, 2 * w, 3)
    line = np.all(image == plot_metrics.LINE, axis=2)
    panels = [line[r * h:(r + 1) * h, c * w:(c + 1) * w].sum() for r in range(2) for c in range(2)]
    assert all(n > 50 for n in panels[:3]) and panels[3] == 0, panels


@pytest.mark.parametrize("content, message", [(None, "no metrics file"), ('{"step": 1, "x": "nan"}\n', "no finite values")])
def test_nothing_to_plot_is_a_one_line_error(tmp_path, content, message):
    (tmp_path / "run").mkdir()
    if content is not None:
        (tmp_path / "run" / "metrics.jsonl").write_text(content)
    proc = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "run")], capture_output=True, text=True)
    assert proc.returncode == 1 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
