"""Fuzz of every command line: whatever the flags and values, a command ends with exit code 0, 1 or 2
and at most one-line errors, never a traceback.

Each example runs the command's ``main`` in this process, in a fresh copy of a small world (a tiny
pix2pix run and its checkpoint, a few 16-24 px images, depth maps, a palette, a config), with that
copy as the working folder, so whatever a command writes stays there.  ``FUZZ_N=500 pytest
tests/test_cli_fuzz.py`` runs more examples per command than the suite's 40.
"""
import contextlib
import io
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from i2i.cli.eval import main as eval_main
from i2i.cli.export import main as export_main
from i2i.cli.import_reference import main as import_main
from i2i.cli.make_haze import main as make_haze_main
from i2i.cli.sample import main as sample_main
from i2i.cli.train import main as train_main
from i2i.cli.translate import main as translate_main
from i2i.cli.download import main as download_main
from i2i.data.io import write_image
from i2i.nn import build_discriminator, build_generator
from reliability_helpers import TINY_NETS

FUZZ = settings(max_examples=int(os.environ.get("FUZZ_N", 40)), deadline=None, database=None,
                suppress_health_check=list(HealthCheck))

# ------------------------------------------------------------------------------------ the world
#: files and folders of the world, and names that are not there yet (all relative to the working folder)
PATHS = ["ckpt.pt", "run", "run/checkpoints", "imgs", "imgs/a.png", "aligned", "target", "depth", "nan_depth",
         "labels", "palette.txt", "cfg.yaml", "notes.txt", "empty", "", ".", "new", "new/deeper", "out.json",
         "imgs/out.json", "target/a.png", "out.pt", "out.onnx", "run/config.yaml"]


def _world(root: Path) -> None:
    rng = np.random.default_rng(0)
    for folder in ("depth", "nan_depth", "empty"):
        (root / folder).mkdir()
    for name, (h, w) in {"a": (16, 16), "b": (24, 20)}.items():
        write_image(root / "imgs" / f"{name}.png", rng.integers(0, 255, (h, w, 3), np.uint8))
        write_image(root / "target" / f"{name}.png", rng.integers(0, 255, (h, w, 3), np.uint8))
        write_image(root / "labels" / f"{name}.png", rng.integers(0, 3, (h, w), np.uint8))
        np.save(root / "depth" / f"{name}.npy", rng.random((h, w)))
        np.save(root / "nan_depth" / f"{name}.npy", np.full((h, w), np.nan))
    write_image(root / "aligned" / "ab.png", rng.integers(0, 255, (16, 32, 3), np.uint8))
    (root / "palette.txt").write_text("0 0 0 0\n1 255 0 0\n2 0 0 255\n")
    (root / "notes.txt").write_text("not an image\n")
    cfg = {"model": "pix2pix", "nets": TINY_NETS,
           "data": {"root": "builtin:shapes", "load_size": 36, "crop_size": 32, "batch_size": 2, "num_workers": 0,
                    "max_items": 4},
           "train": {"out_dir": "runs", "name": "tiny", "epochs": 1, "epochs_decay": 0, "max_steps": 1},
           "log": {"every": 1, "sample_every": 100, "progress": False, "tensorboard": False}}
    (root / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    with _inside(root):
        assert train_main(["--config", "cfg.yaml"]) == 0
    shutil.move(root / "runs" / "tiny", root / "run")
    shutil.rmtree(root / "runs")
    shutil.copy(sorted((root / "run" / "checkpoints").glob("*.pt"))[-1], root / "ckpt.pt")
    (root / "ref").mkdir()  # generator and discriminator files as the reference repositories save them
    torch.manual_seed(0)
    for name in ("G_A", "G_B", "D_A"):
        net = (build_generator({"name": "resnet", "ngf": 4, "n_blocks": 1, "norm": "instance"}, 3, 3)
               if name.startswith("G") else build_discriminator({"name": "patchgan", "ndf": 4, "n_layers": 1}, 3))
        torch.save(net.state_dict(), root / "ref" / f"latest_net_{name}.pth")


@contextlib.contextmanager
def _inside(folder: Path):
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    _world(root)
    return root


def run_in_copy(world: Path, main, argv: list[str]) -> tuple[int, str]:
    """``main(argv)`` in a copy of the world: its exit code (a SystemExit's included) and its stderr."""
    scratch = Path(tempfile.mkdtemp(prefix="fuzz", dir=world.parent))
    err = io.StringIO()
    try:
        shutil.copytree(world, scratch / "w")
        with _inside(scratch / "w"), contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse: 2 for a bad command line, 0 for --help
                code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return code, err.getvalue()


def check(world, main, argv):
    code, err = run_in_copy(world, main, argv)
    assert code in (0, 1, 2), (argv, code, err[-2000:])
    assert "Traceback" not in err, (argv, err[-4000:])
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) <= 1 and (code != 0 or not errors), (argv, code, err[-2000:])


# ------------------------------------------------------------------------------------ values
#: text a user may type (no NUL: a command line cannot carry it; no lone surrogates)
text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
#: a new relative name inside the working folder
fresh_names = text.filter(lambda s: "/" not in s and ".." not in s and not s.startswith("-"))
paths = st.one_of(st.sampled_from(PATHS), fresh_names)
bad_ints = st.one_of(st.sampled_from([2**31, 2**63, 2**64, 2**70, -2**63 - 1, -1, 0]),
                     st.sampled_from(["nan", "inf", "1e3", "0x10", " 3 ", "١٢", "", "-0", "2.5"]))
bad_floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(["nan", "-inf", "1e400", ""]))


def sometimes_bad(good, bad):
    """Mostly a good value (so that a command gets far), now and then a bad one."""
    return st.integers(0, 3).flatmap(lambda i: bad if i == 0 else good)


def ints(low=0, high=4):
    return sometimes_bad(st.integers(low, high), bad_ints)


def floats(low=0.0, high=1.0):
    return sometimes_bad(st.floats(low, high), bad_floats)


def choice(*good, bad=text):
    return sometimes_bad(st.sampled_from(good), bad)


@st.composite
def command_lines(draw, required: dict, options: dict, switches: tuple = ()):
    """``required`` flags (each left out now and then), some ``options`` and ``switches``, now and then
    a stray word."""
    argv = []
    for flag, values in required.items():
        if draw(st.integers(0, 15)):
            argv += [flag, str(draw(values))]
    for flag in draw(st.lists(st.sampled_from(sorted(options)), unique=True, max_size=5)):
        values = draw(options[flag])
        argv += [flag, *map(str, values if isinstance(values, list) else [values])]
    argv += draw(st.lists(st.sampled_from(switches), unique=True, max_size=2)) if switches else []
    if draw(st.integers(0, 15)) == 0:
        argv.append(draw(st.one_of(st.sampled_from(["--help", "--bogus", "-x", "--"]), text)))
    return [a for a in argv if a != "--debug"]  # --debug shows tracebacks on purpose


# ------------------------------------------------------------------------------------ the commands
SET_KEYS = ["model", "model.name", "model.lambda_l1", "model.test_batch_stats", "nets.G.ngf", "nets.G.num_downs",
            "nets.G.name", "nets.D.n_layers", "losses.gan", "losses.penalty.type", "losses.n_critic",
            "optim.default.lr", "optim.G.betas", "optim.D.type", "data.root", "data.kind", "data.load_size",
            "data.crop_size", "data.batch_size", "data.max_items", "data.preprocess", "data.max_pixels",
            "train.seed", "train.device", "train.amp", "train.ema.decay", "train.max_bad_steps", "train.epochs",
            "train.checkpoint_every", "train.name", "train.out_dir", "train.time_budget_min", "eval.every",
            "eval.metrics", "eval.best", "eval.root", "log.every", "log.sample_every", "base", "imports"]
#: the largest value these keys take here (a larger one is a test of the machine's memory, not of the command line)
SMALL = {"data.load_size": 64, "data.crop_size": 64, "data.batch_size": 4, "data.max_items": 8, "nets.G.ngf": 16,
         "nets.G.num_downs": 7, "nets.D.n_layers": 4, "train.epochs": 2, "losses.n_critic": 3}
set_values = sometimes_bad(st.one_of(st.integers(0, 8).map(str), st.sampled_from(
        ["[1, 2]", "{a: 1}", "null", "true", "pix2pix", "cyclegan", "unit", "cogan", "dehazegan", "cpu", "meta",
         "cuda:7", "bf16", "psnr", "[psnr, ssim]", "builtin:shapes", "imgs", "target", "notes.txt", "cfg.yaml",
         "&a [*a, *a]", "!!python/object/apply:os.system [ls]", "unit_quick.yaml", "99999999999999999999999",
         "hinge", "r1", "resnet", "unet", "[hazy, clear]", "0.5", "1e-4"])),
                           st.one_of(bad_ints.map(str), bad_floats.map(str), text))


def _small(key: str, value: str) -> str:
    try:
        return str(SMALL[key]) if key in SMALL and int(value) > SMALL[key] else value
    except ValueError:
        return value


@st.composite
def set_pairs(draw):
    pairs = []
    for _ in range(draw(st.integers(0, 3))):
        key = draw(sometimes_bad(st.sampled_from(SET_KEYS), text))
        value = draw(set_values)
        if key == "imports":  # never a module of the machine's own
            value = draw(st.sampled_from(["[]", "null", "[does.not.exist]", "notes.txt", "[1]"]))
        pairs.append(f"{key}={_small(key, value)}" if draw(st.integers(0, 15)) else key)
    return pairs


@st.composite
def train_lines(draw):
    argv = []
    source = draw(st.sampled_from(["config", "config", "config", "resume", "resume", "shipped", "none", "list"]))
    if source == "config":
        argv += ["--config", draw(choice("cfg.yaml", bad=st.sampled_from(["notes.txt", "imgs", "missing.yaml",
                                                                          "imgs/a.png", ""])))]
    elif source == "resume":
        argv += ["--resume", draw(choice("run", "ckpt.pt", "run/checkpoints", bad=st.sampled_from(
            ["imgs", "cfg.yaml", "nope", "imgs/a.png", ""])))]
    elif source == "shipped":  # its dataset is not here, or it is builtin and trains one small step
        argv += ["--config", draw(st.sampled_from(["pix2pix_facades", "quickstart", "unit_quick", "cogan_quick",
                                                   "dehazegan_quick", "no_such_config"]))]
    elif source == "list":
        argv += ["--list-configs"]
    sets = draw(set_pairs())
    # a run that starts trains one step of small networks into runs/
    tail = ["train.max_steps=1", "train.out_dir=runs", "log.tensorboard=false", "log.progress=false",
            "data.num_workers=0", "data.max_items=4", "train.checkpoint_every=1"]
    if source == "shipped":
        tail += ["nets.G.ngf=4", "nets.D.ndf=4", "data.load_size=32", "data.crop_size=32", "data.batch_size=2"]
    if sets or source != "none":
        argv += ["--set", *sets, *tail]
    if draw(st.integers(0, 7)) == 0:
        argv += ["--import", draw(st.sampled_from(["does.not.exist", "notes.txt", "missing.py", ""]))]
    if draw(st.integers(0, 4)) == 0:
        argv += ["--trust-imports"]
    return argv


checkpoints = choice("ckpt.pt", "run", bad=st.sampled_from(["run/checkpoints", "notes.txt", "imgs", "imgs/a.png",
                                                              "cfg.yaml", "nope", ""]))
devices = choice("cpu", bad=st.sampled_from(["cuda", "meta", "mps", "cuda:9", "xla", "", "cpu:0", "cpu:-1", "bogus"]))
weights = choice("ema", "raw")

translate_lines = command_lines(
    {"--checkpoint": checkpoints,
     "--input": choice("imgs", "imgs/a.png", "aligned", bad=st.sampled_from(["empty", "notes.txt", "nope", ".", ""])),
     "--output": paths},
    {"--direction": choice("AtoB", "BtoA"), "--batch-size": ints(1, 3), "--workers": ints(0, 1),
     "--write-threads": ints(0, 2), "--amp": choice("off", "bf16", bad=st.just("fp16")), "--device": devices,
     "--seed": ints(0, 9), "--resize": ints(0, 40), "--html": paths, "--max-pixels": ints(0, 500),
     "--ext": choice("png", "jpg", ".webp", "bmp", bad=st.one_of(text, st.sampled_from(["txt", "", "."]))),
     "--weights": weights, "--tile": ints(0, 64), "--tile-above": ints(0, 400), "--tile-overlap": ints(0, 16),
     "--method": st.just("dcp")},
    ("--overwrite", "--aligned", "--trust-imports"))

eval_lines = command_lines(
    {"--pred": choice("imgs", "target", bad=st.sampled_from(["empty", "notes.txt", "nope", "aligned", ""]))},
    {"--target": choice("target", "imgs", bad=st.sampled_from(["empty", "nope", "labels", "aligned"])),
     "--metrics": choice("psnr", "ssim", "psnr,ssim", "psnr_y,ssim_y", "seg", "psnr,seg",
                         bad=st.one_of(text, st.sampled_from(["fid", "", ",", "x", "is", "lpips"]))),
     "--json": paths, "--batch-size": ints(1, 3), "--device": devices,
     "--palette": choice("palette.txt", bad=st.sampled_from(["notes.txt", "imgs/a.png", "nope", "ckpt.pt"])),
     "--labels": choice("labels", bad=st.sampled_from(["imgs", "empty", "nope"])), "--ignore-index": ints(0, 3),
     "--max-pixels": ints(0, 500), "--html": paths,
     "--input": choice("imgs", "target", bad=st.sampled_from(["aligned", "nope", "empty"])),
     "--inception-weights": st.sampled_from(["notes.txt", "ckpt.pt", "nope"])},
    ("--offline",))

export_lines = command_lines(
    {"--checkpoint": checkpoints, "--format": choice("torchscript", "safetensors", bad=st.sampled_from(["onnx", "x"])),
     "--output": paths},
    {"--direction": choice("AtoB", "BtoA"), "--opset": ints(1, 30), "--weights": weights},
    ("--overwrite", "--offline"))

sample_lines = command_lines(
    {"--checkpoint": checkpoints, "--output": paths},
    {"--n": ints(1, 3), "--seed": ints(0, 9), "--weights": weights, "--device": devices},
    ("--overwrite", "--trust-imports"))

make_haze_lines = command_lines(
    {"--input": choice("imgs", "imgs/a.png", bad=st.sampled_from(["empty", "notes.txt", "nope", "target/a.png"])),
     "--output": paths},
    {"--depth": choice("depth", bad=st.sampled_from(["nan_depth", "imgs", "empty", "notes.txt", "nope", "labels"])),
     "--beta": st.lists(floats(0, 3), min_size=1, max_size=2), "--per-image": ints(1, 3),
     "--airlight": st.lists(floats(0, 1), min_size=1, max_size=2), "--seed": ints(0, 9)},
    ("--overwrite",))


import_lines = command_lines(
    {"--model": choice("cyclegan", "pix2pix", "cut", bad=st.sampled_from(["unit", ""])), "--output": paths},
    {"--arch": choice("resnet_9blocks", "unet_256", bad=text), "--set": set_values.map(lambda v: f"data.root={v}")})


@st.composite
def reference_lines(draw):
    files = draw(st.lists(choice("ref/latest_net_G_A.pth", "ref/latest_net_G_B.pth", bad=st.sampled_from(
        ["ref/latest_net_D_A.pth", "ckpt.pt", "notes.txt", "imgs/a.png", "nope.pth"])), min_size=1, max_size=3))
    return files + draw(import_lines)


@st.composite
def download_lines(draw):
    argv = [draw(choice("facades", "cyclegan/maps", "pix2pix/facades", "ae_photos",
                        bad=st.one_of(text, st.sampled_from(["cityscapes", "", "cyclegan/x"]))))]
    argv += ["--base-url", draw(st.sampled_from(["http://127.0.0.1:9", "http://127.0.0.1:9/", "not a url", "",
                                                 "ftp://127.0.0.1:9/x", "file:///nonexistent", "http://[::1",
                                                 "http://127.0.0.1:99999", "http://exa mple"]))]
    if draw(st.booleans()):
        argv += ["--root", draw(paths)]
    argv += draw(st.lists(st.sampled_from(["--force", "--no-progress"]), unique=True))
    return argv


# ------------------------------------------------------------------------------------ the tests
@FUZZ
@given(argv=train_lines())
def test_i2i_train(world, argv):
    check(world, train_main, argv)


@FUZZ
@given(argv=translate_lines)
def test_i2i_translate(world, argv):
    check(world, translate_main, argv)


@FUZZ
@given(argv=eval_lines)
def test_i2i_eval(world, argv):
    check(world, eval_main, argv)


@FUZZ
@given(argv=export_lines)
def test_i2i_export(world, argv):
    check(world, export_main, argv)


@FUZZ
@given(argv=sample_lines)
def test_i2i_sample(world, argv):
    check(world, sample_main, argv)


@FUZZ
@given(argv=make_haze_lines)
def test_i2i_make_haze(world, argv):
    check(world, make_haze_main, argv)


@FUZZ
@given(argv=reference_lines())
def test_i2i_import(world, argv):
    check(world, import_main, argv)


@FUZZ
@given(argv=download_lines())
def test_i2i_download(world, argv, monkeypatch):
    monkeypatch.setenv("I2I_DATASETS_URL", "http://127.0.0.1:9")  # never the network
    check(world, download_main, argv)
