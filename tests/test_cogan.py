"""CoGAN (Liu & Tuzel 2016): real weight sharing, shapes, training and exact resume,
sampling (``i2i-sample``) and translation by latent inversion (``i2i-translate``)."""
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from i2i import load_translator
from i2i.checkpoint import load_checkpoint
from i2i.cli.sample import main as sample_main
from i2i.cli.train import main as train_main
from i2i.cli.translate import main as translate_main
from i2i.config import read_yaml
from i2i.configure import build_config
from i2i.data.io import image_to_tensor, read_image, tensor_to_image, write_image
from i2i.engine.optim import group_parameters
from i2i.errors import ConfigError
from i2i.models import build_model
from i2i.models.cogan import resize
from i2i.nn.cogan import CoupledDiscriminator, CoupledGenerator

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
DATA = {"kind": "unpaired", "root": "builtin:shapes", "load_size": 16, "crop_size": 16, "batch_size": 2,
        "num_workers": 0, "max_items": 8}
TINY = {"model": {"name": "cogan", "inversion_steps": 20, "inversion_restarts": 2},
        "nets": {"G": {"size": 16, "ngf": 4}, "D": {"size": 16, "ndf": 4}}, "data": DATA}


def tiny_model(**data):
    cfg = build_config({**TINY, "data": {**DATA, **data}})
    return build_model(cfg)


def write_config(tmp_path, name, tree=TINY, **train):
    tree = {**tree, "train": {"out_dir": str(tmp_path / "runs"), "name": name, "epochs": 1, "epochs_decay": 1,
                              "checkpoint_every": 1000, **train},
            "log": {"every": 1, "sample_every": 4, "progress": False, "tensorboard": False}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A CoGAN run of 4 steps with grayscale A and RGB B images."""
    tmp = tmp_path_factory.mktemp("cogan")
    tree = {**TINY, "data": {**DATA, "in_channels": 1}}
    assert train_main(["--config", str(write_config(tmp, "ckpt", tree, max_steps=4))]) == 0
    return tmp / "runs" / "ckpt"


# --------------------------------------------------------------------------- sharing
def test_the_shared_layers_are_one_module_in_both_branches():
    model = tiny_model()
    G, D = model.G, model.D
    assert G.branch("A").first is G.branch("B").first is G.trunk
    assert G.branch("A").second is G.head_A and G.branch("B").second is G.head_B and G.head_A is not G.head_B
    assert D.branch("A").second is D.branch("B").second is D.tail
    assert D.branch("A").first is D.head_A and D.head_A is not D.head_B
    # each shared tensor is stored once in a checkpoint
    keys = list(model.state_dict())
    assert sum(k.startswith("G.trunk.") for k in keys) == len(G.trunk.state_dict())
    assert not any(".first." in k or ".second." in k for k in keys)


def test_each_shared_parameter_is_in_one_optimizer_group_once():
    model = tiny_model()
    params = group_parameters(model.optim_groups())
    assert set(params) == {"G", "D"}
    for group, shared, net in (("G", model.G.trunk, model.G), ("D", model.D.tail, model.D)):
        ids = [id(p) for p in params[group]]
        assert len(ids) == len(set(ids)) == len(list(net.parameters()))
        for p in shared.parameters():
            assert ids.count(id(p)) == 1
    assert not {id(p) for p in params["G"]} & {id(p) for p in params["D"]}


def test_a_step_on_one_domain_moves_the_other_through_the_shared_layers():
    model = tiny_model().eval()
    z = torch.randn(3, model.G.latent)
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    params = group_parameters(model.optim_groups())
    for group, net, domain, other, inputs in (("G", model.G, "B", "A", z), ("D", model.D, "A", "B", x)):
        opt = torch.optim.Adam(params[group], lr=0.05)
        other_head = {k: v.clone() for k, v in net.head(other).state_dict().items()}
        shared = net.trunk if group == "G" else net.tail
        shared_before = [p.detach().clone() for p in shared.parameters()]
        with torch.no_grad():
            other_before = net.branch(other)(inputs).clone()
        opt.zero_grad()
        net.branch(domain)(inputs).square().mean().backward()  # a loss of one domain only
        opt.step()
        assert all(not torch.equal(a, p) for a, p in zip(shared_before, shared.parameters()))
        for k, v in net.head(other).state_dict().items():
            assert torch.equal(v, other_head[k]), k  # the other domain's own layers did not move...
        with torch.no_grad():
            assert not torch.allclose(net.branch(other)(inputs), other_before)  # ...but its output did


# --------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("size, private", [(16, 1), (32, 1), (32, 2)])
def test_output_shapes(size, private):
    G = CoupledGenerator(latent=8, size=size, ngf=4, channels_a=1, channels_b=3, private_layers=private)
    D = CoupledDiscriminator(size=size, ndf=4, channels_a=1, channels_b=3, private_layers=private)
    a, b = G(torch.randn(5, 8))
    assert a.shape == (5, 1, size, size) and b.shape == (5, 3, size, size)
    assert a.abs().max() <= 1 and b.abs().max() <= 1
    assert D.branch("A")(a).shape == D.branch("B")(b).shape == (5, 1, 1, 1)
    assert G.branch("B")(torch.randn(2, 8)).shape == (2, 3, size, size)


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="power of 2 >= 16, got 24"):
        CoupledGenerator(size=24)
    with pytest.raises(ValueError, match="private_layers must be between 1 and 2"):
        CoupledDiscriminator(size=16, private_layers=3)
    with pytest.raises(ConfigError, match="data.crop_size: 32 differs from nets.G.size 16"):
        tiny_model(load_size=32, crop_size=32)
    with pytest.raises(ConfigError, match="nets.D.size: 32 differs from nets.G.size 16"):
        build_config({**TINY, "nets": {"G": {"size": 16}, "D": {"size": 32}}})


def test_the_defaults_are_the_authors():
    cfg = build_config({"model": "cogan", "data": {"root": "builtin:shapes"}})
    assert cfg.data.kind == "unpaired" and cfg.data.batch_size == 64 and cfg.data.crop_size == 64
    for group in ("G", "D"):
        o = cfg.optim[group]
        assert (o.type, o.lr, o.betas, o.weight_decay, o.schedule) == ("adam", 2e-4, [0.5, 0.999], 5e-4, "constant")
    assert cfg.losses.gan.name == "vanilla"
    model = build_model(cfg)
    assert (model.G.latent, model.G.size, model.D.size) == (100, 64, 64)
    for name in ("cogan_quick.yaml", "cogan_edges2shoes.yaml"):
        assert build_config(read_yaml(CONFIGS / name), check_paths=False).model.name == "cogan"


# --------------------------------------------------------------------------- training
@pytest.mark.smoke
def test_training_resumes_exactly(tmp_path):
    # 8 items / batch 2 = 4 steps an epoch, 2 epochs
    assert train_main(["--config", str(write_config(tmp_path, "full"))]) == 0
    assert train_main(["--config", str(write_config(tmp_path, "cut", max_steps=5))]) == 0
    assert train_main(["--resume", str(tmp_path / "runs" / "cut"), "--set", "train.max_steps=0"]) == 0
    full, cut = load_checkpoint(tmp_path / "runs" / "full"), load_checkpoint(tmp_path / "runs" / "cut")
    assert full["step"] == cut["step"] == 8
    for key, value in full["model"].items():
        assert torch.equal(cut["model"][key], value), key
    rows = [json.loads(line) for line in (tmp_path / "runs" / "full" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 9))
    assert all(np.isfinite(r[f"train/{k}"]) for r in rows for k in ("D_A", "D_B", "G_A", "G_B"))
    grid = read_image(tmp_path / "runs" / "full" / "samples" / "step_0000004.png")
    assert grid.shape == (2 + 4 * 18, 2 + 2 * 18, 3)  # 4 rows of (A, B) from the fixed z


def test_wrong_image_size_is_one_line(tmp_path, capsys):
    tree = {**TINY, "data": {**DATA, "preprocess": "none", "load_size": 20}}  # 20 x 20 images
    assert train_main(["--config", str(write_config(tmp_path, "none", tree, max_steps=1))]) == 1
    assert "the networks work at (16, 16)" in capsys.readouterr().err.strip().splitlines()[-1]


# --------------------------------------------------------------------------- sampling
def test_sample_renders_pairs_of_the_same_z_and_leaves_the_model_alone():
    model = tiny_model().train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    a, b = model.sample(4, torch.Generator().manual_seed(7))
    z = torch.randn(4, model.G.latent, generator=torch.Generator().manual_seed(7))
    model.G.eval()
    with torch.no_grad():
        h = model.G.trunk(z)
        torch.testing.assert_close(a, model.G.head_A(h))
        torch.testing.assert_close(b, model.G.head_B(h))
    model.G.train()
    assert model.G.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    a2, _ = model.sample(4, torch.Generator().manual_seed(8))
    assert not torch.allclose(a, a2)


def test_i2i_sample_writes_pairs_and_a_grid_and_never_overwrites(checkpoint, tmp_path, capsys):
    out = tmp_path / "samples"
    args = ["--checkpoint", str(checkpoint), "--n", "5", "--output", str(out), "--seed", "3"]
    assert sample_main(args) == 0
    model = load_translator(checkpoint).model
    a, b = model.sample(5, torch.Generator().manual_seed(3))
    for i in range(5):
        assert np.array_equal(cv2.imread(str(out / "A" / f"{i:05d}.png"), cv2.IMREAD_UNCHANGED),
                              tensor_to_image(a[i])[:, :, 0])  # A is grayscale in this run
        assert np.array_equal(read_image(out / "B" / f"{i:05d}.png"), tensor_to_image(b[i]))
    assert sorted(p.name for p in (out / "A").iterdir()) == [f"{i:05d}.png" for i in range(5)]
    # 3 pairs a row (ceil(sqrt(5))), 2 rows; 16 px images, 2 px gaps
    assert read_image(out / "grid.png").shape == (2 + 2 * 18, 2 + 6 * 18, 3)
    write_image(out / "B" / "00002.png", np.zeros((16, 16, 3), np.uint8))
    assert sample_main(args) == 2
    assert "00000.png exists (11 output file(s) do): use --overwrite" in capsys.readouterr().err
    assert (read_image(out / "B" / "00002.png") == 0).all()
    assert sample_main(args + ["--overwrite"]) == 0
    assert np.array_equal(read_image(out / "B" / "00002.png"), tensor_to_image(b[2]))
    capsys.readouterr()
    assert sample_main(args[:2] + ["--n", "0", "--output", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err.strip() == "error: --n must be >= 1, got 0"


def test_i2i_sample_writes_each_chunk_before_drawing_the_next(checkpoint, tmp_path, monkeypatch):
    import i2i.cli.sample as sample_cli
    import i2i.data.io
    from i2i.models.cogan import CoGAN

    monkeypatch.setattr(sample_cli, "CHUNK", 2)
    events = []
    draw, write = CoGAN.sample, i2i.data.io.write_image
    monkeypatch.setattr(CoGAN, "sample", lambda self, n, g=None: events.append(f"draw {n}") or draw(self, n, g))
    monkeypatch.setattr(i2i.data.io, "write_image",
                        lambda path, arr: events.append(Path(path).relative_to(out).as_posix()) or write(path, arr))
    out = tmp_path / "many"
    assert sample_main(["--checkpoint", str(checkpoint), "--n", "5", "--output", str(out)]) == 0
    assert events == ["draw 2", "A/00000.png", "B/00000.png", "A/00001.png", "B/00001.png",
                      "draw 2", "A/00002.png", "B/00002.png", "A/00003.png", "B/00003.png",
                      "draw 1", "A/00004.png", "B/00004.png", "grid.png"]


def test_i2i_sample_grid_holds_the_first_pairs_only(checkpoint, tmp_path, monkeypatch):
    import i2i.cli.sample as sample_cli

    monkeypatch.setattr(sample_cli, "CHUNK", 2)
    monkeypatch.setattr(sample_cli, "GRID_PAIRS", 3)
    out = tmp_path / "grid"
    assert sample_main(["--checkpoint", str(checkpoint), "--n", "7", "--output", str(out)]) == 0
    assert len(list((out / "B").iterdir())) == 7
    # 3 pairs: 2 a row (ceil(sqrt(3))), 2 rows; 16 px images, 2 px gaps
    assert read_image(out / "grid.png").shape == (2 + 2 * 18, 2 + 4 * 18, 3)


def test_i2i_sample_output_that_is_a_file(checkpoint, tmp_path, capsys):
    (tmp_path / "f").write_text("keep")
    assert sample_main(["--checkpoint", str(checkpoint), "--n", "2", "--output", str(tmp_path / "f")]) == 2
    assert capsys.readouterr().err.strip() == f"error: --output {tmp_path / 'f'}: is a file, not a folder"
    assert (tmp_path / "f").read_text() == "keep"


def test_i2i_export_refuses_a_generator_of_latent_vectors(checkpoint, tmp_path, capsys):
    from i2i.cli.export import main as export_main

    out = tmp_path / "g.pt"
    assert export_main(["--checkpoint", str(checkpoint), "--format", "torchscript", "--output", str(out)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: --checkpoint {checkpoint}: a cogan generator makes images from latent vectors; its translation "
        "is an optimization, which i2i-export does not export")
    assert not out.exists()


def test_i2i_sample_refuses_a_translator_that_does_not_sample(tmp_path, capsys):
    tree = {"model": "pix2pix", "nets": {"G": {"name": "unet", "num_downs": 5, "ngf": 4}, "D": {"ndf": 4, "n_layers": 1}},
            "data": {**DATA, "kind": "aligned", "load_size": 32, "crop_size": 32}}
    assert train_main(["--config", str(write_config(tmp_path, "p2p", tree, max_steps=1))]) == 0
    capsys.readouterr()
    assert sample_main(["--checkpoint", str(tmp_path / "runs" / "p2p"), "--output", str(tmp_path / "s")]) == 2
    assert "a pix2pix checkpoint translates images and does not sample from noise" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


# --------------------------------------------------------------------------- translation
def test_inversion_error_decreases_with_steps_and_training_state_is_untouched():
    # He init: at N(0, 0.02) an untrained generator's images hardly depend on z
    tree = {**TINY, "nets": {"G": {"size": 16, "ngf": 8, "init": "kaiming"}, "D": {"size": 16, "ndf": 4}}}
    model = build_model(build_config(tree)).train()
    z_true = torch.randn(3, model.G.latent, generator=torch.Generator().manual_seed(123))  # not a start
    target = model.render(z_true)[0]  # images the generator can make
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    errors = [model.invert(target, "A", steps=steps, restarts=2)[1] for steps in (1, 10)]
    z, err = model.invert(target, "A", steps=100, restarts=2)
    errors.append(err)
    assert (errors[1] < errors[0]).all() and (errors[2] < errors[1]).all()
    assert errors[2].max() < 0.25 * errors[0].min()
    assert torch.equal(torch.get_rng_state(), rng)
    assert model.training and model.G.training
    assert all(p.grad is None for p in model.parameters())
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    with torch.no_grad():  # the error reported is the fit of the z returned
        model.G.eval()
        torch.testing.assert_close(((model.G.branch("A")(z) - target) ** 2).flatten(1).mean(1), err)


@pytest.mark.parametrize("direction, c_in, c_out", [("AtoB", 1, 3), ("BtoA", 3, 1)])
def test_i2i_translate_inverts_and_renders_in_the_other_domain(checkpoint, tmp_path, capsys, direction, c_in, c_out):
    src, dst = tmp_path / "in", tmp_path / "out"
    rng = np.random.default_rng(0)
    sizes = {"a.png": (20, 27), "b.png": (16, 16), "c.png": (40, 33)}
    for name, (h, w) in sizes.items():
        write_image(src / name, rng.integers(0, 255, (h, w, c_in), dtype=np.uint8))
    capsys.readouterr()
    args = ["--checkpoint", str(checkpoint), "--input", str(src), "--output", str(dst), "--direction", direction]
    assert translate_main(args) == 0
    for name, (h, w) in sizes.items():
        out = cv2.imread(str(dst / name), cv2.IMREAD_UNCHANGED)
        assert out.shape == ((h, w) if c_out == 1 else (h, w, 3)), name
    err = capsys.readouterr().err
    measure = "reconstruction error of the latent inversion (MSE, pixels in [-1, 1])"
    mean = float(re.search(re.escape(f"mean {measure}: ") + "([0-9.]+)", err).group(1))
    # the same inversions from Python: one image a batch, as the command ran them
    translator = load_translator(checkpoint)
    errors = []
    for name in sizes:
        translator(read_image(src / name, c_in), direction)
        errors.append(translator.model.last_inversion_error)
        assert translator.translation_report() == {measure: errors[-1]}
    assert mean == pytest.approx(sum(errors) / len(errors), abs=1e-4)
    assert 0 < mean < 4
    # the output is the other domain's rendering of the z* that fits the (resized) input, resized back
    model, x = translator.model, image_to_tensor(read_image(src / "a.png", c_in))[None]
    z, _ = model.invert(resize(x, (16, 16)), direction[0])
    expected = resize(model.render(z)["AB".index(direction[-1])], (20, 27)).clamp(-1, 1)
    torch.testing.assert_close(translator.translate_tensor(x, direction), expected)
    assert np.array_equal(read_image(dst / "a.png", c_out), tensor_to_image(expected[0]))
