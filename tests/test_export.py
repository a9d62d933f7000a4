"""i2i-export: TorchScript and ONNX files that match PyTorch at several input sizes."""
import json

import pytest
import torch

from i2i import load_translator
from i2i.checkpoint import save_checkpoint
from i2i.cli.export import main
from i2i.config import to_dict
from i2i.configure import build_config
from i2i.models import build_model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A pix2pix checkpoint with a tiny Tiramisu generator (size multiple 4), batch norm statistics set."""
    torch.manual_seed(0)
    cfg = build_config({
        "model": "pix2pix",
        "nets": {"G": {"name": "tiramisu", "n_blocks": 2, "layers": 2, "bottleneck_layers": 2, "growth": 4,
                               "first_channels": 8, "up_channels": 8},
                 "D": {"ndf": 8, "n_layers": 2}},
        "data": {"root": "builtin:shapes", "in_channels": 1},
    })
    model = build_model(cfg)
    for m in model.modules():  # non-trivial running statistics, so eval mode matters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    path = tmp_path_factory.mktemp("ckpt") / "step_1.pt"
    save_checkpoint({"config": to_dict(cfg), "model": model.state_dict(), "step": 1}, path)
    return path


def _reference(checkpoint, x):
    gen = load_translator(checkpoint, device="cpu").model.generator("AtoB").eval()
    with torch.no_grad():
        return gen(x)


SIZES = [(1, 1, 32, 48), (3, 1, 20, 12)]  # batch, channels, height and width all vary


@pytest.mark.smoke
def test_onnx_matches_pytorch_at_two_sizes(checkpoint, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    import onnx

    out = tmp_path / "gen.onnx"
    assert main(["--checkpoint", str(checkpoint), "--format", "onnx", "--output", str(out)]) == 0
    err = capsys.readouterr().err
    assert "multiples of 4" in err and "max |onnx - torch|" in err and "test_batch_stats" in err
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["i2i.size_multiple"] == "4" and meta["i2i.in_channels"] == "1" and meta["i2i.direction"] == "AtoB"
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for shape in SIZES:
        x = torch.rand(*shape) * 2 - 1
        got = torch.from_numpy(session.run(None, {"image": x.numpy()})[0])
        assert got.shape == (shape[0], 3, *shape[2:])
        assert torch.allclose(got, _reference(checkpoint, x), atol=1e-5)


def test_torchscript_matches_pytorch_at_two_sizes(checkpoint, tmp_path, capsys):
    out = tmp_path / "gen.pt"
    assert main(["--checkpoint", str(checkpoint), "--format", "torchscript", "--output", str(out)]) == 0
    extra = {"i2i.json": ""}
    module = torch.jit.load(str(out), _extra_files=extra)
    assert json.loads(extra["i2i.json"])["size_multiple"] == 4
    for shape in SIZES:
        x = torch.rand(*shape) * 2 - 1
        assert torch.allclose(module(x), _reference(checkpoint, x), atol=1e-5)


def test_existing_output_and_bad_inputs(checkpoint, tmp_path, capsys):
    out = tmp_path / "gen.pt"
    out.write_text("keep me")
    assert main(["--checkpoint", str(checkpoint), "--format", "torchscript", "--output", str(out)]) == 2
    assert "exists (use --overwrite)" in capsys.readouterr().err and out.read_text() == "keep me"
    assert main(["--checkpoint", str(checkpoint), "--format", "torchscript", "--output", str(out), "--overwrite"]) == 0
    assert main(["--checkpoint", str(tmp_path / "none.pt"), "--format", "onnx", "--output", str(tmp_path / "x.onnx")]) == 1
    err = capsys.readouterr().err
    assert "checkpoint not found" in err and not (tmp_path / "x.onnx").exists()


def test_a_generator_whose_export_holds_only_at_the_traced_size_is_refused(tmp_path, capsys):
    # the physics dehazer's airlight takes the top 0.1 % of the pixels and it resizes to sizes computed from the
    # input's: tracing freezes both at the check batch's size, so the file is right there and wrong elsewhere
    torch.manual_seed(0)
    cfg = build_config({"model": {"name": "dehazegan", "gan_w": 0, "vgg_w": 0},
                        "nets": {"G": {"name": "physics_dehazer", "width": 4, "radius": 4}, "D": {"name": "pixelgan"}},
                        "data": {"root": "builtin:haze"}})
    model = build_model(cfg)
    with torch.no_grad():  # a CNN that does something: gains off 0
        model.G.t_gain.fill_(1.0)
        model.G.a_gain.fill_(1.0)
    ckpt = tmp_path / "step_1.pt"
    save_checkpoint({"config": to_dict(cfg), "model": model.state_dict(), "step": 1}, ckpt)
    out = tmp_path / "gen.pt"
    assert main(["--checkpoint", str(ckpt), "--format", "torchscript", "--output", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "differs from PyTorch" in err and "nothing written" in err, err
    assert not out.exists()


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_a_translator_by_latent_inversion_is_refused_in_one_line(tmp_path, capsys, fmt):
    # CoGAN's generators take latent vectors; its translation is an optimization per image, not a network
    cfg = build_config({"model": "cogan", "nets": {"G": {"size": 16, "ngf": 4}, "D": {"size": 16, "ndf": 4}},
                        "data": {"kind": "unpaired", "root": "builtin:shapes", "load_size": 16, "crop_size": 16}})
    ckpt = tmp_path / "step_1.pt"
    save_checkpoint({"config": to_dict(cfg), "model": build_model(cfg).state_dict(), "step": 1}, ckpt)
    out = tmp_path / f"gen.{fmt}"
    assert main(["--checkpoint", str(ckpt), "--format", fmt, "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "from latent vectors" in err, err
    assert not out.exists()


def test_an_opset_the_exporter_cannot_write_is_one_line_and_no_file(checkpoint, tmp_path, capsys):
    import onnx

    top = onnx.defs.onnx_opset_version()
    for opset, message in ((0, f"ONNX opsets are 1 to {top}"), (top + 1, f"ONNX opsets are 1 to {top}"),
                           (1, "the ONNX exporter cannot write this generator in opset 1 (it wrote opset ")):
        out = tmp_path / f"gen{opset}.onnx"
        assert main(["--checkpoint", str(checkpoint), "--format", "onnx", "--output", str(out),
                     "--opset", str(opset)]) == 2
        err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("note: ")]
        assert len(err) == 1 and err[0].startswith(f"error: --opset {opset}: {message}"), err
        assert not out.exists() and not list(tmp_path.glob(".gen*"))
