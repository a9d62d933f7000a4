"""i2i-export --format safetensors: a config.yaml + model.safetensors folder that translates exactly as its
checkpoint does, holds only the inference weights (EMA where kept), and is read without unpickling anything."""
import json
import struct

import numpy as np
import pytest
import torch

from i2i import load_translator
from i2i.checkpoint import save_checkpoint
from i2i.cli.export import main as export_main
from i2i.cli.translate import main as translate_main
from i2i.config import to_dict
from i2i.configure import build_config
from i2i.data.io import read_image, write_image
from i2i.deploy import CONFIG, WEIGHTS
from i2i.errors import CheckpointError, ConfigError
from i2i.models import build_model

DATA = {"root": "builtin:shapes", "load_size": 32, "crop_size": 32, "batch_size": 1, "num_workers": 0}
TREES = {
    "pix2pix": {"model": "pix2pix", "train": {"ema": {"decay": 0.9}},
                "nets": {"G": {"name": "tiramisu", "n_blocks": 2, "layers": 2, "bottleneck_layers": 2, "growth": 4,
                               "first_channels": 8, "up_channels": 8}, "D": {"ndf": 8, "n_layers": 2}},
                "data": DATA},
    "cyclegan": {"model": "cyclegan", "nets": {"G": {"name": "resnet", "n_blocks": 1, "ngf": 8},
                                               "D": {"ndf": 8, "n_layers": 1}}, "data": {**DATA, "kind": "unpaired"}},
}


def make_checkpoint(folder, name):
    """A checkpoint of ``name`` with set batch-norm statistics; pix2pix also with EMA weights unlike its raw ones."""
    torch.manual_seed(0)
    cfg = build_config(TREES[name])
    model = build_model(cfg)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    state = {"config": to_dict(cfg), "model": model.state_dict(), "step": 3}
    if cfg.train.ema.decay:
        state["ema"] = {k: v + 0.01 * torch.randn_like(v) if v.is_floating_point() else v
                        for k, v in model.state_dict().items() if k.startswith("G.")}
    path = folder / "step_3.pt"
    save_checkpoint(state, path)
    return path, state


def safetensors_header(path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw, n


@pytest.mark.parametrize("name, directions", [("pix2pix", ["AtoB"]), ("cyclegan", ["AtoB", "BtoA"])])
def test_export_round_trips_to_identical_translations(tmp_path, name, directions, monkeypatch, capsys):
    ckpt, state = make_checkpoint(tmp_path, name)
    out = tmp_path / "exported"
    assert export_main(["--checkpoint", str(ckpt), "--format", "safetensors", "--output", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [CONFIG, WEIGHTS]
    assert f"wrote {out}" in capsys.readouterr().err
    header, _, _ = safetensors_header(out / WEIGHTS)
    names = {k for k in header if k != "__metadata__"}
    generators = {k for k in state["model"] if k.startswith("G")} if name == "pix2pix" else \
        {k for k in state["model"] if k.startswith(("G_A.", "G_B."))}
    assert names == generators and not any(k.startswith("D") for k in names)  # inference weights only
    assert header["__metadata__"]["weights"] == ("ema" if name == "pix2pix" else "raw")
    from_ckpt = load_translator(ckpt, device="cpu")
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("the folder was read with torch.load"))
    from_folder = load_translator(out, device="cpu")
    assert from_folder.weights == from_ckpt.weights and str(out) in from_folder.checkpoint
    if name == "pix2pix":  # the averaged weights, not the raw ones
        key = next(k for k in state["ema"] if k.endswith("weight"))
        assert torch.equal(from_folder.model.state_dict()[key], state["ema"][key])
        assert not torch.equal(from_folder.model.state_dict()[key], state["model"][key])
        with pytest.raises(ConfigError, match="averaged \\(EMA\\) weights only"):
            load_translator(out, device="cpu", weights="raw")
    g = torch.Generator().manual_seed(1)
    for direction in directions:
        x = torch.rand(2, 3, 40, 28, generator=g) * 2 - 1
        torch.manual_seed(5)  # test-time dropout (pix2pix) draws the same numbers in both
        a = from_ckpt(x, direction)
        torch.manual_seed(5)
        assert torch.equal(from_folder(x, direction), a)


def test_translate_reads_the_folder_and_writes_the_same_files(tmp_path):
    ckpt, _ = make_checkpoint(tmp_path, "cyclegan")
    out = tmp_path / "exported"
    assert export_main(["--checkpoint", str(ckpt), "--format", "safetensors", "--output", str(out)]) == 0
    rng = np.random.default_rng(0)
    for i in range(2):
        write_image(tmp_path / "in" / f"{i}.png", rng.integers(0, 256, (20, 24, 3)).astype(np.uint8))
    for source, dest in ((ckpt, "by_ckpt"), (out, "by_folder")):
        assert translate_main(["--checkpoint", str(source), "--input", str(tmp_path / "in"), "--output",
                               str(tmp_path / dest), "--workers", "0", "--direction", "BtoA"]) == 0
    for i in range(2):
        assert np.array_equal(read_image(tmp_path / "by_ckpt" / f"{i}.png"),
                              read_image(tmp_path / "by_folder" / f"{i}.png"))


def _translate_error(tmp_path, folder, capsys):
    write_image(tmp_path / "one.png", np.zeros((8, 8, 3), np.uint8))
    rc = translate_main(["--checkpoint", str(folder), "--input", str(tmp_path / "one.png"), "--output",
                         str(tmp_path / "out"), "--workers", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], err
    return err[0]


def test_a_tampered_folder_is_one_line(tmp_path, capsys):
    ckpt, _ = make_checkpoint(tmp_path, "cyclegan")
    out = tmp_path / "exported"
    assert export_main(["--checkpoint", str(ckpt), "--format", "safetensors", "--output", str(out)]) == 0
    capsys.readouterr()
    weights = out / WEIGHTS
    good = weights.read_bytes()
    header, raw, n = safetensors_header(weights)

    weights.write_bytes(good[: len(good) // 2])  # cut short
    assert "not a readable safetensors file" in _translate_error(tmp_path, out, capsys)

    key = next(k for k, v in header.items()
               if k != "__metadata__" and len(v["shape"]) == 4 and v["shape"][0] != v["shape"][1])
    header[key]["shape"] = [header[key]["shape"][1], header[key]["shape"][0], *header[key]["shape"][2:]]
    body = json.dumps(header, separators=(",", ":")).encode().ljust(n)  # same byte count: the data offsets stay valid
    weights.write_bytes(raw[:8] + body + raw[8 + n:])
    line = _translate_error(tmp_path, out, capsys)
    assert "do not fit the cyclegan model" in line and key in line

    start = 8 + n + header[key]["data_offsets"][0]
    weights.write_bytes(raw[:start] + struct.pack("<f", float("nan")) + raw[start + 4:])  # one weight a NaN
    assert "NaN or Inf" in _translate_error(tmp_path, out, capsys)

    class Payload:  # a pickle in place of the weights: never run
        def __reduce__(self):
            return (open, (str(tmp_path / "ran"), "w"))

    torch.save(Payload(), weights)
    assert "not a readable safetensors file" in _translate_error(tmp_path, out, capsys)
    assert not (tmp_path / "ran").exists()

    weights.write_bytes(good)
    (out / CONFIG).write_text("model: [unclosed")
    assert "config.yaml: not valid YAML" in _translate_error(tmp_path, out, capsys)
    with pytest.raises(CheckpointError):
        load_translator(out, device="cpu")


def test_existing_outputs_are_kept(tmp_path, capsys):
    ckpt, _ = make_checkpoint(tmp_path, "cyclegan")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    for extra in ([], ["--overwrite"]):
        assert export_main(["--checkpoint", str(ckpt), "--format", "safetensors", "--output", str(mine),
                            *extra]) == 2
        assert "--output" in capsys.readouterr().err and (mine / "notes.txt").read_text() == "keep me"
    out = tmp_path / "exported"
    assert export_main(["--checkpoint", str(ckpt), "--format", "safetensors", "--output", str(out)]) == 0
    assert export_main(["--checkpoint", str(ckpt), "--format", "safetensors", "--output", str(out)]) == 2
    assert export_main(["--checkpoint", str(ckpt), "--format", "safetensors", "--output", str(out),
                        "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [CONFIG, WEIGHTS]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left
