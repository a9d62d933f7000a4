"""i2i-translate's overlapped pipeline (decoding workers, batches, writer threads) writes the files of
one image at a time: the same bytes, the same names, unreadable inputs listed."""
import numpy as np
import pytest
import yaml

from i2i import load_translator
from i2i.cli.train import main as train_main
from i2i.cli.translate import main as translate_main
from i2i.data.io import read_image, write_image
from i2i.translator import Translator

# CycleGAN with instance norm: an image's translation does not depend on the rest of its batch
TREE = {"model": "cyclegan", "nets": {"G": {"name": "resnet", "n_blocks": 1, "ngf": 8}, "D": {"ndf": 8, "n_layers": 1}},
        "data": {"root": "builtin:shapes", "load_size": 32, "crop_size": 32, "batch_size": 2, "num_workers": 0,
                 "max_items": 4}}
# name -> (height, width); the order of the sorted names makes batches of 4, 1 (another size), 2 and 1
SIZES = {"a.png": (32, 32), "b.png": (32, 32), "c.png": (32, 32), "d.png": (32, 32), "e.png": (32, 32),
         "f.png": (40, 48), "g.jpg": (40, 48), "sub/h.png": (32, 32)}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pipeline")
    tree = {**TREE, "train": {"out_dir": str(tmp / "runs"), "name": "cg", "max_steps": 1},
            "log": {"progress": False, "tensorboard": False}}
    (tmp / "cg.yaml").write_text(yaml.safe_dump(tree))
    assert train_main(["--config", str(tmp / "cg.yaml")]) == 0
    rng = np.random.default_rng(0)
    for name, (h, w) in SIZES.items():
        write_image(tmp / "in" / name, rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    (tmp / "in" / "broken.png").write_bytes(b"not an image")
    return tmp


def translate(setup, out, *extra):
    return translate_main(["--checkpoint", str(setup / "runs" / "cg"), "--input", str(setup / "in"),
                           "--output", str(setup / out), *extra])


def files(root):
    """The images under ``root`` (the marker of an output folder left out)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != ".i2i-translations"}


@pytest.fixture
def workers_seen(monkeypatch):
    """The decoding processes the pipeline starts, on a machine of 4 CPUs whose network uses one thread."""
    import os

    import i2i.pipeline

    seen, loader = [], i2i.pipeline.DataLoader
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(i2i.pipeline.torch, "get_num_threads", lambda: 1)
    monkeypatch.setattr(i2i.pipeline, "DataLoader", lambda *a, **k: seen.append(k["num_workers"]) or loader(*a, **k))
    return seen


def test_batches_workers_and_threads_write_the_files_of_one_image_at_a_time(setup, capsys, workers_seen):
    assert translate(setup, "one", "--batch-size", "1", "--workers", "0", "--write-threads", "0") == 1
    one_err = capsys.readouterr().err
    assert translate(setup, "four", "--batch-size", "4", "--workers", "2", "--write-threads", "3") == 1
    four_err = capsys.readouterr().err
    assert workers_seen == [0, 2]
    one, four = files(setup / "one"), files(setup / "four")
    assert sorted(one) == sorted(SIZES) and four == one
    for err in (one_err, four_err):
        assert "translated 8 image(s)" in err and "skipped 1 unreadable file(s)" in err and "broken.png" in err
    # and those are the translator's own outputs, image by image
    translator = load_translator(setup / "runs" / "cg")
    for name in ("a.png", "f.png", "sub/h.png"):
        expected = translator(read_image(setup / "in" / name))
        assert np.array_equal(read_image(setup / "one" / name), expected)


def test_equal_sizes_are_batched_in_input_order(setup, monkeypatch):
    seen = []
    original = Translator.translate_tensor

    def spy(self, x, direction="AtoB"):
        seen.append(tuple(x.shape))
        return original(self, x, direction)

    monkeypatch.setattr(Translator, "translate_tensor", spy)
    assert translate(setup, "batched", "--batch-size", "4") == 1
    assert seen == [(4, 3, 32, 32), (1, 3, 32, 32), (2, 3, 40, 48), (1, 3, 32, 32)]


def test_bf16_autocast_translates_close_to_fp32(setup):
    assert translate(setup, "bf16", "--batch-size", "4", "--amp", "bf16") == 1
    assert translate(setup, "fp32", "--batch-size", "4") == 1
    for name in SIZES:
        a = read_image(setup / "bf16" / name).astype(int)
        b = read_image(setup / "fp32" / name).astype(int)
        assert a.shape == b.shape and np.abs(a - b).mean() < 8, name


@pytest.mark.parametrize("extra, message", [
    (["--amp", "fp16"], "--amp fp16 needs a CUDA device"),
    (["--workers", "-1"], "--workers must be >= 0"),
    (["--batch-size", "0"], "--batch-size must be >= 1"),
])
def test_bad_options_are_one_line_and_exit_2(setup, capsys, extra, message):
    assert translate(setup, "bad", "--device", "cpu", *extra) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert not (setup / "bad").exists() or not any((setup / "bad").rglob("*.png"))


def test_a_model_trained_channels_last_translates_in_that_layout(tmp_path):
    import copy
    import dataclasses

    import torch

    tree = {**TREE, "train": {"out_dir": str(tmp_path / "runs"), "name": "cl", "max_steps": 1, "channels_last": True},
            "log": {"progress": False, "tensorboard": False}}
    (tmp_path / "cl.yaml").write_text(yaml.safe_dump(tree))
    assert train_main(["--config", str(tmp_path / "cl.yaml")]) == 0
    nhwc = load_translator(tmp_path / "runs" / "cl")
    convs = [m.weight for m in nhwc.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous() for w in convs)
    cfg = dataclasses.replace(nhwc.cfg, train=dataclasses.replace(nhwc.cfg.train, channels_last=False))
    nchw = Translator(copy.deepcopy(nhwc.model), cfg, nhwc.device)
    assert all(m.weight.is_contiguous() for m in nchw.model.modules() if isinstance(m, torch.nn.Conv2d))
    x = torch.rand(2, 3, 40, 48) * 2 - 1
    out = nhwc.translate_tensor(x)
    assert out.shape == (2, 3, 40, 48) and out.is_contiguous()
    torch.testing.assert_close(out, nchw.translate_tensor(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cpus, threads, device, expected", [
    (2, 2, "cpu", 0),  # every core runs the network: decoding in this process
    (4, 2, "cpu", 2), (3, 2, "cpu", 1), (1, 1, "cpu", 0),
    (2, 2, "meta", 1),  # the network on an accelerator leaves all but one CPU
])
def test_decoding_processes_only_on_cpus_the_network_leaves(setup, monkeypatch, cpus, threads, device, expected):
    import os

    import torch

    import i2i.pipeline
    from i2i.pipeline import Reading, translate_files

    seen = []
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    monkeypatch.setattr(i2i.pipeline.torch, "get_num_threads", lambda: threads)
    monkeypatch.setattr(i2i.pipeline, "DataLoader", lambda *a, **k: seen.append(k["num_workers"]) or iter(()))

    class Fake:
        pass

    fake = Fake()
    fake.device = torch.device(device)
    todo = [(setup / "in" / "a.png", setup / "unused" / "a.png")] * 3
    translate_files(fake, todo, Reading(3), workers=2, write_threads=0, progress=False)
    assert seen == [expected]


def test_images_smaller_than_the_generator_bottleneck_are_translated(setup, tmp_path):
    for name, (h, w) in {"dot.png": (1, 1), "line.png": (3, 40)}.items():
        write_image(tmp_path / "in" / name, np.full((h, w, 3), 200, np.uint8))
    assert translate_main(["--checkpoint", str(setup / "runs" / "cg"), "--input", str(tmp_path / "in"),
                           "--output", str(tmp_path / "out")]) == 0
    assert read_image(tmp_path / "out" / "dot.png").shape == (1, 1, 3)
    assert read_image(tmp_path / "out" / "line.png").shape == (3, 40, 3)
