"""CUT and FastCUT: the authors' defaults, the head as part of G's group, the losses as the paper writes them,
FastCUT's flips, and a run from the command line that trains, resumes exactly and translates."""
import json

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from i2i import load_translator
from i2i.checkpoint import load_checkpoint
from i2i.cli.train import main as train_main
from i2i.cli.translate import main as translate_main
from i2i.configure import build_config
from i2i.data.io import read_image, write_image
from i2i.engine.optim import group_parameters
from i2i.errors import ConfigError
from i2i.losses import PatchNCELoss
from i2i.models import build_model
from i2i.nn.taps import sequential_tap_channels, sequential_taps
from i2i.registry import GENERATORS

TINY_NETS = {"G": {"name": "resnet", "n_blocks": 5, "ngf": 4, "antialias": True},  # taps 0, 4, 8, 12, 16
             "D": {"ndf": 4, "n_layers": 1}, "F": {"units": 8}}
DATA = {"root": "builtin:shapes", "load_size": 32, "crop_size": 32, "batch_size": 2, "num_workers": 0,
        "max_items": 4}


def tiny_model(name="cut", **settings):
    torch.manual_seed(0)
    return build_model(build_config({"model": {"name": name, "num_patches": 16, **settings}, "nets": TINY_NETS,
                                     "data": DATA}))


def batch_of(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"A": torch.rand(2, 3, 32, 32, generator=g) * 2 - 1, "B": torch.rand(2, 3, 32, 32, generator=g) * 2 - 1}


def test_defaults_are_the_authors():
    cut = build_config({"model": "cut", "data": {"root": "builtin:shapes"}})
    s = cut.model
    assert (s.lambda_gan, s.lambda_nce, s.nce_idt, s.nce_layers, s.num_patches, s.nce_t, s.flip_equivariance) == \
        (1.0, 1.0, True, [0, 4, 8, 12, 16], 256, 0.07, False)
    g = cut.optim["G"]
    assert (g.type, g.lr, g.betas, g.schedule) == ("adam", 2e-4, [0.5, 0.999], "linear") and cut.optim["D"] == g
    assert cut.losses.gan.name == "lsgan" and cut.losses.gan.params == {"half": False}
    assert cut.nets["G"].name == "resnet_9blocks" and cut.nets["G"].params["antialias"] is True
    assert cut.nets["D"].name == "patchgan" and cut.nets["D"].params["antialias"] is True
    assert cut.nets["F"].name == "mlp" and cut.nets["F"].params == {"units": 256}
    assert {role: (n.init, n.init_gain) for role, n in cut.nets.items()} == {r: ("xavier", 0.02) for r in "GDF"}
    assert (cut.train.epochs, cut.train.epochs_decay, cut.data.batch_size) == (200, 200, 1)
    fast = build_config({"model": "fastcut", "data": {"root": "builtin:shapes"}})
    s = fast.model
    assert (s.lambda_gan, s.lambda_nce, s.nce_idt, s.flip_equivariance, s.nce_layers) == \
        (1.0, 10.0, False, True, [0, 4, 8, 12, 16])
    assert (fast.train.epochs, fast.train.epochs_decay) == (150, 50) and fast.nets == cut.nets


def test_the_head_is_built_with_the_model_from_the_generators_taps_and_stepped_with_g():
    model = tiny_model()
    assert [m[0].in_features for m in model.F.mlps] == model.G.tap_channels([0, 4, 8, 12, 16]) == [3, 8, 16, 16, 16]
    groups = group_parameters(model.optim_groups())
    ids = {name: {id(p) for p in params} for name, params in groups.items()}
    assert {id(p) for p in model.F.parameters()} <= ids["G"]
    assert ids["G"] == {id(p) for p in [*model.G.parameters(), *model.F.parameters()]}
    assert ids["D"] == {id(p) for p in model.D.parameters()}
    assert any(k.startswith("F.mlps.4.") for k in model.state_dict())  # in every checkpoint from step 0
    assert model.ema_group == "G" and model.generator() is model.G


def test_the_losses_are_the_papers():
    model = tiny_model()
    batch = batch_of()
    model.start_step(torch.Generator().manual_seed(3))
    out = model.generate(batch)
    fake = model.G(torch.cat([batch["A"], batch["B"]]))  # one pass over A and B (the identity term's input)
    torch.testing.assert_close(out["fake_B"], fake[:2])
    torch.testing.assert_close(out["idt_B"], fake[2:])
    d_loss, d_logs = model.loss("D", batch, out)
    real, fake_logits = model.D(batch["B"]), model.D(out["fake_B"])
    expected_d = 0.5 * (((real - 1) ** 2).mean() + (fake_logits ** 2).mean())  # LSGAN (MSE), halved
    assert d_loss.item() == pytest.approx(expected_d.item(), rel=1e-5)
    generator = torch.Generator().manual_seed(5)
    model.start_step(generator)
    g_loss, logs = model.loss("G", batch, out)
    assert logs["G_GAN"].item() == pytest.approx(((model.D(out["fake_B"]) - 1) ** 2).mean().item(), rel=1e-5)
    layers, nce = [0, 4, 8, 12, 16], PatchNCELoss(0.07, 16)
    by_hand = torch.Generator().manual_seed(5)  # the same draws, in the same order: A's term, then B's
    nce_a = nce(model.G.taps(out["fake_B"], layers), model.G.taps(batch["A"], layers), model.F, by_hand)
    nce_b = nce(model.G.taps(out["idt_B"], layers), model.G.taps(batch["B"], layers), model.F, by_hand)
    assert logs["NCE"].item() == pytest.approx(nce_a.item(), rel=1e-5)
    assert logs["NCE_Y"].item() == pytest.approx(nce_b.item(), rel=1e-5)
    assert g_loss.item() == pytest.approx((logs["G_GAN"] + (nce_a + nce_b) / 2).item(), rel=1e-5)
    # FastCUT: no identity term, lambda_NCE 10
    fast = tiny_model("fastcut", flip_equivariance=False)
    out = fast.generate(batch)
    assert "idt_B" not in out and "flip" not in out
    g_loss, logs = fast.loss("G", batch, out)
    assert set(logs) == {"G_GAN", "NCE"}
    assert g_loss.item() == pytest.approx((logs["G_GAN"] + 10 * logs["NCE"]).item(), rel=1e-5)


def test_fastcut_mirrors_the_input_in_some_steps_and_the_output_features_back():
    model = tiny_model("fastcut")
    batch = batch_of()
    decisions = []
    for seed in range(12):
        model.start_step(torch.Generator().manual_seed(seed))
        decisions.append(bool(model.generate(batch)["flip"]))
    assert True in decisions and False in decisions  # the step's generator decides, one way or the other
    for seed in (decisions.index(True), decisions.index(False)):
        flipped = decisions[seed]
        model.start_step(torch.Generator().manual_seed(seed))
        out = model.generate(batch)
        seen = batch["A"].flip(3) if flipped else batch["A"]
        torch.testing.assert_close(out["fake_B"], model.G(seen))  # G saw the mirrored images
        shown = model.visuals(batch, out)[1]  # shown as the input is: unmirrored
        torch.testing.assert_close(shown, out["fake_B"].flip(3) if flipped else out["fake_B"])
        # the output's features are mirrored back before they meet the input's, position by position
        after_draw = torch.Generator().manual_seed(seed)
        torch.rand((), generator=after_draw)  # the flip's draw comes first
        model.start_step(torch.Generator().manual_seed(seed))
        out = model.generate(batch)
        _, logs = model.loss("G", batch, out)
        feats_out = model.G.taps(out["fake_B"], [0, 4, 8, 12, 16])
        feats_out = [f.flip(3) for f in feats_out] if flipped else feats_out
        expected = PatchNCELoss(0.07, 16)(feats_out, model.G.taps(batch["A"], [0, 4, 8, 12, 16]), model.F,
                                          after_draw)
        assert logs["NCE"].item() == pytest.approx(expected.item(), rel=1e-5)


class Pointwise(nn.Module):
    """A generator of 1x1 convs: it commutes with mirroring, so FastCUT's flips must leave its NCE loss as it is."""

    size_multiple = 1

    def __init__(self, in_channels=3, out_channels=3):
        super().__init__()
        self.model = nn.Sequential(nn.Conv2d(in_channels, 8, 1), nn.ReLU(), nn.Conv2d(8, out_channels, 1), nn.Tanh())

    def forward(self, x):
        return self.model(x)

    def taps(self, x, layers):
        return sequential_taps(self.model, x, layers)

    def tap_channels(self, layers):
        return sequential_tap_channels(self.model, self.model[0].in_channels, layers)


def test_a_mirrored_step_of_a_generator_that_commutes_with_mirroring_gives_the_unmirrored_loss():
    GENERATORS.register("pointwise_test", override=True)(Pointwise)
    torch.manual_seed(0)
    model = build_model(build_config({"model": {"name": "fastcut", "num_patches": 16, "nce_layers": [0, 2]},
                                      "nets": {**TINY_NETS, "G": "pointwise_test"}, "data": DATA}))
    batch = batch_of()
    seed = next(s for s in range(20) if model.start_step(torch.Generator().manual_seed(s))
                or bool(model.generate(batch)["flip"]))
    model.start_step(torch.Generator().manual_seed(seed))
    out = model.generate(batch)
    torch.testing.assert_close(out["fake_B"], model.G(batch["A"]).flip(3))
    _, logs = model.loss("G", batch, out)
    after_draw = torch.Generator().manual_seed(seed)
    torch.rand((), generator=after_draw)  # the flip's draw comes first, then the positions
    unmirrored = PatchNCELoss(0.07, 16)(model.G.taps(model.G(batch["A"]), [0, 2]), model.G.taps(batch["A"], [0, 2]),
                                        model.F, after_draw)
    assert logs["NCE"].item() == pytest.approx(unmirrored.item(), rel=1e-6)
    # features left mirrored would pair each query with the key of the mirrored place: another loss
    after_draw = torch.Generator().manual_seed(seed)
    torch.rand((), generator=after_draw)
    wrong = PatchNCELoss(0.07, 16)(model.G.taps(out["fake_B"], [0, 2]), model.G.taps(batch["A"], [0, 2]),
                                   model.F, after_draw)
    assert abs(wrong.item() - logs["NCE"].item()) > 1e-3


def test_settings_the_model_cannot_use_are_one_line_config_errors():
    with pytest.raises(ConfigError, match="nets.G.name: cut needs a generator with feature taps .* not 'unet'"):
        build_model(build_config({"model": "cut", "nets": {"G": {"name": "unet", "num_downs": 5, "ngf": 4}},
                                  "data": DATA}))
    with pytest.raises(ConfigError, match=r"model.nce_layers: feature taps: layer 40 is not one of the generator's "
                                          r"layers 0-"):
        tiny_model(nce_layers=[0, 40])
    with pytest.raises(ConfigError, match="data.out_channels: cut encodes its outputs"):
        build_config({"model": "cut", "data": {**DATA, "out_channels": 1}})
    with pytest.raises(ConfigError, match="model.lambda_nce"):
        build_config({"model": {"name": "fastcut", "lambda_gan": 0, "lambda_nce": 0}, "data": DATA})


def write_config(tmp_path, name, model="cut", **train):
    tree = {"model": {"name": model, "num_patches": 16}, "nets": TINY_NETS, "data": DATA,
            "train": {"out_dir": str(tmp_path / "runs"), "name": name, "epochs": 2, "epochs_decay": 2,
                      "checkpoint_every": 1000, **train},
            "log": {"every": 1, "sample_every": 3, "progress": False, "tensorboard": False}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


@pytest.mark.smoke
@pytest.mark.parametrize("model", ["cut", "fastcut"])
def test_training_resumes_exactly_and_translates(tmp_path, model):
    # 4 items, batch 2: 2 steps an epoch, 2 + 2 epochs: 8 steps
    assert train_main(["--config", str(write_config(tmp_path, "full", model))]) == 0
    rows = [json.loads(line) for line in (tmp_path / "runs" / "full" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 9))
    assert all(np.isfinite(r["train/NCE"]) and r["train/NCE"] > 0 for r in rows)
    assert ("train/NCE_Y" in rows[0]) == (model == "cut")
    assert train_main(["--config", str(write_config(tmp_path, "cut", model, max_steps=3))]) == 0
    assert train_main(["--resume", str(tmp_path / "runs" / "cut"), "--set", "train.max_steps=0"]) == 0
    a, b = load_checkpoint(tmp_path / "runs" / "full"), load_checkpoint(tmp_path / "runs" / "cut")
    assert a["step"] == b["step"] == 8
    for key, value in a["model"].items():
        assert torch.equal(b["model"][key], value), key
    head = [k for k in a["model"] if k.startswith("F.")]
    assert head and not torch.equal(a["model"][head[0]], build_model(build_config(
        yaml.safe_load((tmp_path / "full.yaml").read_text()))).state_dict()[head[0]])  # the head was trained
    n_g = sum(1 for k in a["model"] if k.startswith(("G.", "F.")) and k.endswith(("weight", "bias")))
    assert len(a["optimizers"]["G"]["state"]) == n_g  # G's Adam steps G and F
    src = tmp_path / "in"
    write_image(src / "x.png", np.random.default_rng(0).integers(0, 255, (30, 42, 3), dtype=np.uint8))
    assert translate_main(["--checkpoint", str(tmp_path / "runs" / "full"), "--input", str(src),
                           "--output", str(tmp_path / "out")]) == 0
    assert read_image(tmp_path / "out" / "x.png").shape == (30, 42, 3)
    assert (tmp_path / "runs" / "full" / "samples" / "step_0000003.png").is_file()
    # and through the Python API: the same image as the CLI wrote
    translator = load_translator(tmp_path / "runs" / "full", device="cpu")
    api = translator(read_image(src / "x.png"))
    assert api.shape == (30, 42, 3) and np.abs(api.astype(int) - read_image(tmp_path / "out" / "x.png")).max() <= 1
