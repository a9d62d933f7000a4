"""The small scripts in tools/."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from i2i.data.io import read_image, write_image

TOOLS = Path(__file__).resolve().parent.parent / "tools"


def run(script, *args):
    return subprocess.run([sys.executable, str(TOOLS / script), *map(str, args)], capture_output=True, text=True)


def test_export_builtin_writes_pairs(tmp_path):
    proc = run("export_builtin.py", tmp_path / "demo", "--phase", "test", "--size", 32)
    assert proc.returncode == 0, proc.stderr
    a = sorted((tmp_path / "demo" / "A").iterdir())
    b = sorted((tmp_path / "demo" / "B").iterdir())
    assert len(a) == len(b) == 16 and [p.name for p in a] == [p.name for p in b]
    assert read_image(a[0]).shape == (32, 32, 3)
    assert not np.array_equal(read_image(a[0]), read_image(b[0]))


def test_export_builtin_bad_arguments_are_one_line_exit_2(tmp_path):
    for size in (0, -3, 100000):
        proc = run("export_builtin.py", tmp_path / "demo", "--size", size)
        assert proc.returncode == 2 and proc.stderr.strip() == f"error: --size must be 16 to 4096, got {size}"
    (tmp_path / "file").write_text("x")
    proc = run("export_builtin.py", tmp_path / "file")
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: out {tmp_path / 'file'}: is a file, not a folder"
    assert not (tmp_path / "demo").exists()


def test_split_aligned_halves_pairs(tmp_path):
    pair = np.concatenate([np.zeros((8, 6, 3), np.uint8), np.full((8, 6, 3), 200, np.uint8)], 1)
    write_image(tmp_path / "src" / "train" / "x.jpg", pair)
    proc = run("split_aligned.py", tmp_path / "src", tmp_path / "dst")
    assert proc.returncode == 0, proc.stderr
    assert (read_image(tmp_path / "dst" / "trainA" / "x.png") < 10).all()
    assert (read_image(tmp_path / "dst" / "trainB" / "x.png") > 190).all()



def test_split_aligned_skips_and_lists_unreadable_images_and_keeps_existing_halves(tmp_path):
    pair = np.concatenate([np.zeros((8, 6, 3), np.uint8), np.full((8, 6, 3), 200, np.uint8)], 1)
    write_image(tmp_path / "src" / "train" / "x.png", pair)
    write_image(tmp_path / "src" / "train" / "thin.png", pair[:, :1])
    (tmp_path / "src" / "train" / "broken.jpg").write_bytes(b"not an image")
    mine = np.full((8, 6, 3), 77, np.uint8)
    write_image(tmp_path / "dst" / "trainA" / "x.png", mine)
    proc = run("split_aligned.py", tmp_path / "src", tmp_path / "dst")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "broken.jpg" in proc.stderr and "thin.png" in proc.stderr and "1 of 3 pairs split" in proc.stderr
    assert np.array_equal(read_image(tmp_path / "dst" / "trainA" / "x.png"), mine)
    assert (read_image(tmp_path / "dst" / "trainB" / "x.png") > 190).all()


TINY_BENCH = ["--cases", "pix2pix_256", "--threads", "1", "--data", "builtin:shapes", "--set", "nets.G.name=unet",
              "nets.G.num_downs=5", "nets.G.ngf=8", "nets.D.ndf=8", "data.load_size=36", "data.crop_size=32"]


def test_benchmark_prints_training_rates_memory_and_loader_throughput_as_json(tmp_path):
    import json

    proc = run("benchmark.py", "--steps", 2, "--warmup", 1, "--batch-size", 2, "--out", tmp_path / "b.json",
               *TINY_BENCH)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)  # the whole of stdout is the JSON
    assert report == json.loads((tmp_path / "b.json").read_text())
    assert report["options"]["batch_size"] == 2 and report["machine"]["threads"] == 1
    r = report["results"]["pix2pix_256"]
    assert r["steps_timed"] == 2 and r["batch_size"] == 2 and r["loader_workers"] == 2
    assert r["images_per_s"] == pytest.approx(2 * r["iterations_per_s"], rel=0.01)
    assert r["sec_per_it"] >= r["step_only_sec"] > 0 and r["step_cpu_sec"] > 0 and r["loader_batches_per_s"] > 0 and r["peak_rss_gb"] > 0.1
    assert report["options"]["channels_last"] == "config" and r["channels_last"] is False  # pix2pix's config: NCHW
    assert "fraction_of_peak" not in r  # no peak given, none known for a CPU


def _benchmark_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("i2i_benchmark_tool", TOOLS / "benchmark.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_counts_a_convolutions_forward_and_backward_flops():
    import torch

    bench = _benchmark_module()
    conv = torch.nn.Conv2d(4, 6, 3, padding=1, bias=False)
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    forward = 2 * (2 * 8 * 8) * 6 * (4 * 3 * 3)  # 2 * output positions * out channels * (in channels * k * k)
    flops, _ = bench.count_flops(lambda: conv(x).sum().backward())
    assert flops == 3 * forward  # forward, input gradient, weight gradient
    x.requires_grad_(False)
    flops, _ = bench.count_flops(lambda: conv(x).sum().backward())
    assert flops == 2 * forward  # no input gradient to compute


def test_benchmark_knows_the_dense_bf16_peak_of_common_gpus():
    bench = _benchmark_module()
    assert bench.bf16_peak_tflops("NVIDIA H100 80GB HBM3") == 989.4
    assert bench.bf16_peak_tflops("NVIDIA H100 PCIe") == 756.5
    assert bench.bf16_peak_tflops("NVIDIA H200") == 989.4
    assert bench.bf16_peak_tflops("NVIDIA A100-SXM4-80GB") == 312.0
    assert bench.bf16_peak_tflops("Some Other GPU") is None


def test_benchmark_reports_the_work_of_a_step_and_its_fraction_of_a_given_peak():
    import json

    one = run("benchmark.py", "--steps", 1, "--warmup", 0, "--peak-tflops", 0.5, *TINY_BENCH)
    two = run("benchmark.py", "--steps", 1, "--warmup", 0, "--batch-size", 2, *TINY_BENCH)
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    r1, r2 = (json.loads(p.stdout)["results"]["pix2pix_256"] for p in (one, two))
    assert r1["flop_per_step"] > 0 and r2["flop_per_step"] == 2 * r1["flop_per_step"]  # every term scales with the batch
    assert r2["tflop_per_image"] == pytest.approx(r2["flop_per_step"] / 2e12, rel=1e-3)
    assert r1["tflops_achieved"] == pytest.approx(r1["flop_per_step"] / 1e12 / r1["step_only_sec"], rel=0.01)
    assert r1["peak_tflops"] == 0.5 and r1["fraction_of_peak"] == pytest.approx(r1["tflops_achieved"] / 0.5, rel=1e-3)


def test_benchmark_layout_is_the_configs_unless_given():
    import json

    def layout(*extra):
        proc = run("benchmark.py", "--steps", 1, "--warmup", 0, *extra)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)["results"]["pix2pix_256"]["channels_last"]

    assert layout("--channels-last", *TINY_BENCH) is True
    assert layout(*TINY_BENCH, "train.channels_last=true") is True  # the config's value, not overridden


def test_benchmark_translate_reports_end_to_end_and_forward_rates():
    import json

    proc = run("benchmark.py", "--translate", "--images", 4, "--batch-size", 2, *TINY_BENCH)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)["results"]["pix2pix_256"]
    assert r["images"] == 4 and r["batch_size"] == 2 and r["image_size"] == [32, 32]
    # the command loads the checkpoint too, but another load of the same small file can take as long
    assert r["end_to_end_images_per_s"] > 0 and r["forward_images_per_s"] > 0 and r["command_s"] > 0 and r["load_s"] > 0
    # the JSON rounds the ratio to 3 decimals: a small ratio (a busy machine) needs the absolute slack
    assert r["end_to_end_vs_forward"] == pytest.approx(r["end_to_end_images_per_s"] / r["forward_images_per_s"],
                                                       rel=0.01, abs=1e-3)


def test_benchmark_bad_arguments_exit_2():
    proc = run("benchmark.py", "--cases", "nope")
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: unknown case(s) nope")
    proc = run("benchmark.py", "--steps", 0)
    assert proc.returncode == 2 and proc.stderr.strip() == "error: --steps must be >= 1, got 0"
    import torch

    if not torch.cuda.is_available():
        proc = run("benchmark.py", "--device", "cuda")
        assert proc.returncode == 2 and proc.stderr.strip() == "error: --device cuda: no CUDA device is available to torch here"
    proc = run("benchmark.py", "--peak-tflops", 0)
    assert proc.returncode == 2 and proc.stderr.strip() == "error: --peak-tflops must be > 0, got 0.0"


def test_strip_puts_same_named_images_side_by_side(tmp_path):
    for i, folder in enumerate(("in", "out", "target")):
        write_image(tmp_path / folder / "a.png", np.full((10, 20, 3), 50 * i, np.uint8))  # 2:1
        write_image(tmp_path / folder / "b.png", np.full((10, 10, 3), 50 * i + 10, np.uint8))  # 1:1
    write_image(tmp_path / "out" / "c.jpg", np.zeros((4, 4, 3), np.uint8))
    proc = run("strip.py", "--dirs", tmp_path / "in", tmp_path / "out", tmp_path / "target",
               "--names", "a.png", "b.png", "--height", 20, "--out", tmp_path / "strip.png")
    assert proc.returncode == 0, proc.stderr
    img = read_image(tmp_path / "strip.png")
    # row a: three 40 x 20 tiles with 4 px gaps; row b: three 20 x 20 tiles, padded white
    assert img.shape == (20 + 4 + 20, 3 * 40 + 2 * 4, 3)
    assert (img[5, 5] == 0).all() and (img[5, 44 + 5] == 50).all() and (img[5, 88 + 5] == 100).all()
    assert (img[30, 5] == 10).all() and (img[30, 24 + 5] == 60).all() and (img[30, 100] == 255).all()
    proc = run("strip.py", "--dirs", tmp_path / "in", tmp_path / "out", "--names", "c.png", "--out", tmp_path / "x.png")
    assert proc.returncode == 1 and "no image named c.png" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_help_descriptions_have_no_leftover_docstring_markup():
    import importlib

    for name in ("train", "translate", "eval", "sample", "make_haze", "export"):
        description = importlib.import_module(f"i2i.cli.{name}").parser().description
        assert "`" not in description, (name, description)


def test_strip_height_below_1_is_one_line_exit_2(tmp_path):
    write_image(tmp_path / "a" / "1.png", np.zeros((8, 8, 3), np.uint8))
    proc = run("strip.py", "--dirs", tmp_path / "a", "--names", "1.png", "--height", 0, "--out", tmp_path / "s.png")
    assert proc.returncode == 2 and "--height must be >= 1, got 0" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "s.png").exists()
    proc = run("strip.py", "--dirs", tmp_path / "a", "--names", "1.png", "--out", tmp_path / "s.txt")
    assert proc.returncode == 2 and f"--out {tmp_path / 's.txt'}: unknown image extension" in proc.stderr
    assert not (tmp_path / "s.txt").exists()


def test_split_aligned_two_images_of_one_name_are_one_pair_and_the_other_listed(tmp_path):
    pair = np.concatenate([np.zeros((8, 6, 3), np.uint8), np.full((8, 6, 3), 200, np.uint8)], 1)
    write_image(tmp_path / "src" / "train" / "x.jpg", pair)
    write_image(tmp_path / "src" / "train" / "x.png", 255 - pair)
    proc = run("split_aligned.py", tmp_path / "src", tmp_path / "dst")
    assert proc.returncode == 1 and "train: 1 of 2 pairs split" in proc.stderr
    assert "x.png: its halves would be x.png, the name x.jpg's halves have" in proc.stderr
    assert (read_image(tmp_path / "dst" / "trainA" / "x.png") < 10).all()  # from x.jpg, the first listed
