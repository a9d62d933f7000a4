"""tools/gpu_check.py: its dry run executes every kind of cell on the CPU, and without CUDA the GPU check
refuses in one line."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

TOOLS = Path(__file__).resolve().parent.parent / "tools"
NO_GPU = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # the same on a machine with GPUs


def gpu_check(*args, timeout=300):
    return subprocess.run([sys.executable, str(TOOLS / "gpu_check.py"), *map(str, args)], capture_output=True,
                          text=True, env=NO_GPU, timeout=timeout)


@pytest.fixture
def tools(monkeypatch):
    """The modules of tools/gpu_check.py, imported in this process."""
    monkeypatch.syspath_prepend(str(TOOLS))
    spec = importlib.util.spec_from_file_location("i2i_gpu_check_tool", TOOLS / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_dry_run_runs_every_kind_of_cell_and_writes_the_json(tmp_path):
    out = tmp_path / "check.json"
    proc = gpu_check("--dry-run", "--only", "pix2pix", "--compile-cells", 1, "--compile-backend", "aot_eager",
                     "--bench-cases", "pix2pix_256", "--bench-settings", "fp32-eager", "--bench-max-batch", 1,
                     "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    cells = {c["cell"]: c for c in report["cells"]}
    assert report["machine"]["torch"] == torch.__version__ and report["machine"]["device"] == "cpu (dry run)"
    # every cell has a printed row; the summary counts them
    rows = proc.stdout.splitlines()
    assert all(any(line.split()[:2] == [name, c["status"]] for line in rows) for name, c in cells.items())
    assert report["summary"] == {s: sum(c["status"] == s for c in cells.values()) for s in ("ok", "FAIL", "skipped")}
    assert report["summary"]["FAIL"] == 0 and f"JSON: {out}" in rows[-1]
    # 2 precisions x 2 layouts x eager/compiled, and the 4 fp16 cells skipped: the whole matrix of one translator
    train = {name: c for name, c in cells.items() if name.startswith("train/pix2pix/")}
    assert len(train) == 12
    for name, c in train.items():
        if "/fp16/" in name:
            assert c["status"] == "skipped" and c["detail"] == "fp16 needs CUDA"
        elif name == "train/pix2pix/fp32/compile/nchw":
            assert c["status"] == "ok" and "vs eager: max rel diff" in c["detail"]
        elif "/compile/" in name:
            assert c["status"] == "skipped" and c["detail"] == "--compile-cells 1 reached"
        else:
            assert c["status"] == "ok" and c["sync"] == "not checked (needs CUDA)"
            assert len(c["losses"]) == 2 and all(v == v and abs(v) < 1e6 for row in c["losses"] for v in row.values())
    eager, compiled = cells["train/pix2pix/fp32/eager/nchw"]["losses"], cells["train/pix2pix/fp32/compile/nchw"]["losses"]
    assert [row.keys() for row in compiled] == [row.keys() for row in eager]
    assert all(a[k] == pytest.approx(b[k], rel=2e-3) for a, b in zip(compiled, eager) for k in a)
    assert cells["resume/pix2pix"]["status"] == "ok" and cells["resume/pix2pix"]["bit_identical"]  # as on any CPU
    assert cells["translate/pix2pix"]["status"] == "ok"
    export = cells["export/pix2pix"]
    assert (export["status"] == "ok" and export["max_abs_diff"] <= 1e-4) or "not installed" in export["detail"]
    assert cells["tiled"]["status"] == "ok" and cells["tiled"]["tiles"] >= 2 and cells["tiled"]["max_diff"] <= 2
    bench = cells["bench/pix2pix_256/fp32-eager/batch-1"]
    assert bench["status"] == "ok" and bench["batch_size"] == 1 and bench["images_per_s"] > 0
    assert bench["result"]["images_per_s"] == bench["images_per_s"] and bench["fraction_of_peak"] is None
    assert cells["bench/pix2pix_256/fp32-eager/largest"]["status"] == "skipped"  # --bench-max-batch 1
    assert (cells["distributed"]["status"], cells["distributed"]["detail"]) == ("skipped",
                                                                                "needs 2 or more GPUs (dry run)")
    assert all(c["detail"] for c in cells.values() if c["status"] == "skipped")  # each says why


def test_without_cuda_the_check_says_so_in_one_line(tmp_path):
    proc = gpu_check("--out", tmp_path / "check.json", timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "error: no CUDA device is available to torch here; --dry-run runs the same check on the CPU at tiny sizes"]
    assert not (tmp_path / "check.json").exists()


def test_bad_arguments_are_named(tools):
    def error(*argv):
        return tools.check_args(tools.parser().parse_args(["--dry-run", *argv]), ["cyclegan", "pix2pix"])

    assert error() is None
    assert error("--only", "pix2pix,nope") == "--only: unknown nope; known: cyclegan, pix2pix"
    assert error("--bench-settings", "fast").startswith("--bench-settings: unknown fast; known: fp32-eager")
    assert error("--steps", "1") == "--steps must be >= 2, got 1"
    assert error("--compile-backend", "nope").startswith("--compile-backend: unknown nope; known: ")
    assert error("--budget-min", "0") == "--budget-min must be > 0, got 0.0"


def test_the_largest_benchmark_batch_doubles_until_out_of_memory(tools, tmp_path, monkeypatch):
    from i2i.engine.trainer import Trainer

    cells = sys.modules["gpu_cells"]
    sizes, step = [], Trainer.train_step

    def train_step(self, batch):
        sizes.append(len(batch["A"]))
        if len(batch["A"]) >= 8:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return step(self, batch)

    monkeypatch.setattr(Trainer, "train_step", train_step)
    work = cells.Work(tmp_path, dry=True, steps=2, bench_max_batch=64)
    assert cells.largest_batch(work, "pix2pix_256", "fp32-eager") == (4, "batch 8 ran out of memory")
    assert sizes == [2, 4, 8]
    work.bench_max_batch = 3  # a bound that is no power of 2
    assert cells.largest_batch(work, "pix2pix_256", "fp32-eager") == (2, "--bench-max-batch 3")


def test_compiled_losses_are_compared_with_a_tolerance(tools):
    compare = sys.modules["gpu_cells"]._compare
    eager = [{"D": 0.5, "G": 2.0}, {"D": 0.25, "G": 1.0}]
    assert compare(eager, eager, 1e-3, 0.0) == (True, 0.0)
    close, worst = compare([{"D": 0.5, "G": 2.0}, {"D": 0.25, "G": 1.0005}], eager, 1e-3, 0.0)
    assert close and worst == pytest.approx(5e-4)
    close, worst = compare([{"D": 0.5, "G": 2.0}, {"D": 0.2, "G": 1.0}], eager, 1e-3, 1e-4)
    assert not close and worst == pytest.approx(0.2)
    assert compare(eager[:1], eager, 1e-3, 0.0)[0] is False  # a missing step
    assert compare([{"D": 0.5}, {"D": 0.25}], eager, 1e-3, 0.0)[0] is False  # a missing loss
