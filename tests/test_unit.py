"""UNIT: shared layers, shapes, loss terms against hand computations, training from the CLI."""
import json

import numpy as np
import pytest
import torch

from i2i.checkpoint import load_checkpoint
from i2i.cli.train import main as train_main
from i2i.cli.translate import main as translate_main
from i2i.configure import build_config
from i2i.data.io import read_image, write_image
from i2i.engine.optim import group_parameters
from i2i.losses import kl_unit_variance
from i2i.models import build_model
from i2i.registry import GENERATORS

TINY_NETS = {"G": {"dim": 4, "n_res": 2}, "D": {"ndf": 4, "n_layers": 2, "num_scales": 2}}
DATA = {"root": "builtin:shapes", "load_size": 32, "crop_size": 32, "batch_size": 1, "num_workers": 0,
        "max_items": 4}


def tiny_model(**nets):
    tree = {"model": "unit", "nets": {**TINY_NETS, **nets}, "data": DATA}
    return build_model(build_config(tree))


def test_shared_layers_are_the_same_modules_and_stepped_once():
    g = GENERATORS.build("unit", dim=4, n_res=2, n_shared_enc=1, n_shared_dec=2)
    assert g.encoder("A")[1] is g.encoder("B")[1] and len(g.enc_shared) == 1
    assert g.decoder("A")[0] is g.decoder("B")[0] and len(g.dec_shared) == 2
    assert g.encoder("A")[0] is not g.encoder("B")[0]
    shared = list(g.enc_shared.parameters()) + list(g.dec_shared.parameters())
    params = group_parameters({"G": [g, g.encoder("A"), g.decoder("B")]})["G"]
    assert len(params) == len({id(p) for p in params}) == len(list(g.parameters()))
    assert all(sum(p is q for q in params) == 1 for p in shared)
    # one optimizer step changes the shared weights once, and both domains use them
    before = [p.detach().clone() for p in shared]
    opt = torch.optim.SGD(params, lr=0.1)
    x = torch.randn(1, 3, 16, 16)
    (g.decode(g.encode(x, "A"), "A").sum() + g.decode(g.encode(x, "B"), "B").sum()).backward()
    opt.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, shared))
    assert g.encoder("B")[1][0].conv_block[1].weight is g.encoder("A")[1][0].conv_block[1].weight
    unshared = GENERATORS.build("unit", dim=4, n_res=2, n_shared_enc=0, n_shared_dec=0)
    assert len(unshared.enc_shared) == len(unshared.dec_shared) == 0


@pytest.mark.parametrize("size", [(16, 16), (32, 48)])
def test_shapes(size):
    g = GENERATORS.build("unit", in_channels=3, out_channels=1, dim=4, n_res=2)
    x = torch.randn(2, 3, *size)
    h = g.encode(x, "A")
    assert h.shape == (2, 16, size[0] // 4, size[1] // 4)
    assert g.decode(h, "B").shape == (2, 1, *size) and g.decode(h, "A").shape == (2, 3, *size)
    assert g(x).shape == (2, 1, *size)


def test_kl_term_is_the_mean_square_of_the_latent_mean():
    h = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert kl_unit_variance(h).item() == pytest.approx((1 + 4 + 9 + 16) / 4)


def test_multiscale_lsgan_losses_are_summed_over_scales_as_the_authors_do():
    torch.manual_seed(0)
    model = tiny_model()
    batch = {"A": torch.rand(1, 3, 32, 32) * 2 - 1, "B": torch.rand(1, 3, 32, 32) * 2 - 1}
    out = model.generate(batch)
    loss, logs = model.loss("D", batch, out)
    expected = 0.0
    for D, real, fake in ((model.D_A, batch["A"], out["fake_A"]), (model.D_B, batch["B"], out["fake_B"])):
        for r, f in zip(D(real), D(fake.detach())):  # LSGAN, labels 0/1, no 1/2, summed over the 2 scales
            expected = expected + ((r - 1) ** 2).mean() + (f ** 2).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    g_loss, g_logs = model.loss("G", batch, out)
    adv = sum(((f - 1) ** 2).mean() for f in model.D_A(out["fake_A"]))
    assert g_logs["G_A"].item() == pytest.approx(adv.item(), rel=1e-5)
    s = model.settings
    total = (s.gan_w * (g_logs["G_A"] + g_logs["G_B"]) + s.recon_x_w * (g_logs["rec_A"] + g_logs["rec_B"])
             + s.recon_kl_w * (g_logs["kl_A"] + g_logs["kl_B"]) + s.recon_x_cyc_w * (g_logs["cycle_A"] + g_logs["cycle_B"])
             + s.recon_kl_cyc_w * (g_logs["kl_cyc_A"] + g_logs["kl_cyc_B"]))
    assert g_loss.item() == pytest.approx(total.item(), rel=1e-5)
    assert g_logs["kl_A"].item() == pytest.approx(out["h_a"].pow(2).mean().item(), rel=1e-6)


def test_defaults_are_the_authors():
    cfg = build_config({"model": "unit", "data": {"root": "builtin:shapes"}})
    g = cfg.optim["G"]
    assert (g.type, g.lr, g.betas, g.weight_decay) == ("adam", 1e-4, [0.5, 0.999], 1e-4)
    assert (g.schedule, g.unit, g.step_size, g.gamma) == ("step", "iter", 100_000, 0.5)
    assert cfg.nets["G"].init == "kaiming" and cfg.nets["D"].init == "normal"
    assert cfg.nets["D"].params == {"design": "strided", "ndf": 64, "n_layers": 4, "norm": "none", "num_scales": 3}
    assert (cfg.model.recon_x_w, cfg.model.recon_kl_w, cfg.model.recon_x_cyc_w) == (10.0, 0.01, 10.0)
    assert cfg.losses.gan.name == "lsgan" and cfg.losses.gan.params == {"half": False}


#: a tiny UNIT run: 4 items in batches of 1, no flips (a resumed run draws the same batches)
RUN = {"model": "unit", "nets": TINY_NETS, "data": {**DATA, "no_flip": True}, "optim": {"default": {"lr": 1e-3}}}


@pytest.mark.smoke
def test_training_lowers_reconstruction_resumes_exactly_and_translates_both_ways(tmp_path, tiny_run):
    # 4 items, batch 1: 4 steps an epoch
    assert train_main(["--config", str(tiny_run("full", RUN, epochs=6, epochs_decay=0))]) == 0
    rows = [json.loads(line) for line in (tmp_path / "runs" / "full" / "metrics.jsonl").read_text().splitlines()]
    first, last = rows[:4], rows[-4:]
    for key in ("train/rec_A", "train/rec_B", "train/cycle_A"):
        assert np.mean([r[key] for r in last]) < 0.8 * np.mean([r[key] for r in first]), key
    cut = tiny_run("cut", RUN, epochs=6, epochs_decay=0, max_steps=7)
    assert train_main(["--config", str(cut)]) == 0
    assert train_main(["--resume", str(tmp_path / "runs" / "cut"), "--set", "train.max_steps=0"]) == 0
    a, b = load_checkpoint(tmp_path / "runs" / "full"), load_checkpoint(tmp_path / "runs" / "cut")
    assert a["step"] == b["step"] == 24
    for key, value in a["model"].items():
        assert torch.equal(b["model"][key], value), key
    assert any(k.startswith("G.enc_shared.") for k in a["model"])
    src = tmp_path / "in"
    write_image(src / "x.png", np.random.default_rng(0).integers(0, 255, (30, 42, 3), dtype=np.uint8))
    for direction in ("AtoB", "BtoA"):
        out = tmp_path / direction
        assert translate_main(["--checkpoint", str(tmp_path / "runs" / "full"), "--input", str(src),
                               "--output", str(out), "--direction", direction]) == 0
        assert read_image(out / "x.png").shape == (30, 42, 3)


def test_optional_perceptual_term_compares_each_translation_with_its_source():
    torch.manual_seed(0)
    tree = {"model": {"name": "unit", "vgg_w": 2.0, "vgg_weights": "random"}, "nets": TINY_NETS, "data": DATA}
    model = build_model(build_config(tree))
    batch = {"A": torch.rand(1, 3, 32, 32) * 2 - 1, "B": torch.rand(1, 3, 32, 32) * 2 - 1}
    out = model.generate(batch)
    loss, logs = model.loss("G", batch, out)
    expected = ((model.perceptual.features(out["fake_A"])["relu5_3"]
                 - model.perceptual.features(batch["B"])["relu5_3"]) ** 2).mean()
    assert logs["vgg_A"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert not any("vgg" in k or "perceptual" in k for k in model.state_dict())
