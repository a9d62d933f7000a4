"""Network files of the reference repositories (pytorch-CycleGAN-and-pix2pix, contrastive-unpaired-translation):
the architecture found from the keys, the key mapping, the one-line errors, translating with one."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from i2i import load_translator
from i2i.cli.translate import main as translate_main
from i2i.errors import CheckpointError, ConfigError
from i2i.nn import build_discriminator, build_generator
from i2i.reference import Arch, i2i_name, mapped_state, open_reference

RESNET = dict(family="resnet", depth=3, width=4, in_channels=3, out_channels=3, norm="instance")
ARCHS = [
    Arch(**RESNET),
    Arch(**{**RESNET, "antialias": True}),
    Arch(**{**RESNET, "dropout": True, "norm": "batch"}),
    Arch(**{**RESNET, "padding": "zero", "norm": "none", "out_channels": 1}),  # final conv at model.22
    Arch("unet", 5, 4, 3, 3, "batch", dropout=True),
    Arch("unet", 6, 2, 1, 3, "instance", dropout=True),
    Arch("patchgan", 2, 4, 6, 1, "instance"),
    Arch("patchgan", 3, 4, 3, 1, "batch"),
    Arch("patchgan", 3, 4, 3, 1, "instance", antialias=True),
]


def i2i_net(arch: Arch) -> torch.nn.Module:
    if arch.family == "patchgan":
        return build_discriminator(arch.net_config(), arch.in_channels)
    return build_generator(arch.net_config(), arch.in_channels, arch.out_channels)


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: f"{a.name}-{a.norm}{'-aa' if a.antialias else ''}")
def test_the_architecture_is_found_from_the_keys_and_shapes(tmp_path, arch):
    torch.manual_seed(0)
    net = i2i_net(arch).eval()
    for m in net.modules():  # running statistics other than 0 and 1
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2)
    state = net.state_dict()
    if arch.norm == "none":  # the reference's convs have no bias without a norm (but the last)
        state = {k: v for k, v in state.items() if not k.endswith(".bias") or k == "model.22.bias"}
        with torch.no_grad():
            for name, p in net.named_parameters():
                p.zero_() if name.endswith(".bias") and name not in state else None
    torch.save(state, tmp_path / "latest_net_G.pth")
    ref = open_reference(tmp_path / "latest_net_G.pth")
    assert ref.arch == arch
    x = torch.rand(2, arch.in_channels, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(ref.build().eval()(x), net(x))


def test_the_key_mapping_keeps_the_layer_paths_and_drops_what_i2i_does_not_keep():
    instance, batch = Arch(**RESNET), Arch(**{**RESNET, "norm": "batch"})
    assert i2i_name("model.1.weight", instance) == "model.1.weight"
    assert i2i_name("model.10.conv_block.5.weight", instance) == "model.10.conv_block.5.weight"
    assert i2i_name("model.model.1.model.3.model.2.bias", batch) == "model.model.1.model.3.model.2.bias"
    for leaf in ("running_mean", "running_var", "num_batches_tracked"):  # old instance norm's statistics
        assert i2i_name(f"model.2.{leaf}", instance) is None
        assert i2i_name(f"model.2.{leaf}", batch) == f"model.2.{leaf}"  # batch norm's are its own
    assert i2i_name("model.7.filt", instance) is None  # CUT's fixed blur filter
    # batch norms of files older than PyTorch 0.4 have no num_batches_tracked: it starts at 0
    own = {"model.2.running_mean": torch.zeros(3), "model.2.num_batches_tracked": torch.tensor(5)}
    out = mapped_state({"model.2.running_mean": torch.ones(3)}, batch, own)
    assert out["model.2.num_batches_tracked"].item() == 0 and torch.equal(out["model.2.running_mean"], torch.ones(3))


def test_i2i_generators_keep_the_reference_layer_paths():
    """The names the mapping relies on: the reference's module order, written out for a ResNet of one block."""
    net = build_generator(Arch(**{**RESNET, "depth": 1, "antialias": True}).net_config(), 3, 3)
    assert [k for k in net.state_dict()] == [
        "model.1.weight", "model.1.bias", "model.4.weight", "model.4.bias", "model.8.weight", "model.8.bias",
        "model.12.conv_block.1.weight", "model.12.conv_block.1.bias", "model.12.conv_block.5.weight",
        "model.12.conv_block.5.bias", "model.14.weight", "model.14.bias", "model.18.weight", "model.18.bias",
        "model.22.weight", "model.22.bias"]
    unet = build_generator({"name": "unet", "ngf": 2, "num_downs": 5, "norm": "batch"}, 3, 3).state_dict()
    assert "model.model.1.model.3.model.3.model.3.model.1.weight" in unet  # the innermost down conv
    assert "model.model.1.model.2.running_mean" in unet and "model.model.3.weight" in unet


def _saved(tmp_path, value, name="latest_net_G.pth"):
    torch.save(value, tmp_path / name)
    return tmp_path / name


def _one_line(exc_info) -> str:
    text = str(exc_info.value)
    assert "\n" not in text
    return text


def test_files_of_neither_kind_are_one_line(tmp_path):
    (tmp_path / "text.pth").write_text("not a torch file")
    cases = {tmp_path / "text.pth": "does not load",
             _saved(tmp_path, {"encoder.weight": torch.zeros(2, 2)}, "other.pth"): "encoder.weight",
             _saved(tmp_path, {"model": {"a": 1}, "config": {}}, "i2i.pth"): "not a state dict of tensors",
             _saved(tmp_path, [torch.zeros(1)], "list.pth"): "not a state dict",
             tmp_path / "missing.pth": "not found"}
    for path, words in cases.items():
        with pytest.raises(CheckpointError) as exc:
            open_reference(path)
        assert words in _one_line(exc) and str(path) in str(exc.value)
        if path.name != "missing.pth":
            assert "pytorch-CycleGAN-and-pix2pix or contrastive-unpaired-translation" in str(exc.value)


def test_a_layout_it_cannot_tell_asks_for_arch(tmp_path):
    net = build_generator(Arch(**RESNET).net_config(), 3, 3)
    state = {k: v for k, v in net.state_dict().items() if not k.startswith("model.11.")}  # one block's keys lost
    path = _saved(tmp_path, state)
    with pytest.raises(CheckpointError) as exc:
        open_reference(path).build()
    assert "give --arch" in _one_line(exc) and "resnet_9blocks" in str(exc.value)
    with pytest.raises(CheckpointError) as exc:  # the named architecture is checked against the keys
        open_reference(path, arch="resnet_3blocks").build()
    assert "missing" in _one_line(exc) and "model.11.conv_block" in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        open_reference(path, arch="resnet_many")
    assert "--arch" in _one_line(exc)
    with pytest.raises(CheckpointError) as exc:
        open_reference(path, arch="unet_256")
    assert "holds a resnet network" in _one_line(exc)


def test_translate_and_load_translator_take_a_reference_file(tmp_path, capsys):
    torch.manual_seed(0)
    arch = Arch(**{**RESNET, "antialias": True})
    net = i2i_net(arch).eval()
    path = _saved(tmp_path, net.state_dict())
    translator = load_translator(path, device="cpu")
    assert "anti-aliased" in capsys.readouterr().err
    x = torch.rand(1, 3, 16, 20) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(translator(x), net(x).clamp(-1, 1), atol=1e-6)
    Image.fromarray((np.random.default_rng(0).random((16, 20, 3)) * 255).astype(np.uint8)).save(tmp_path / "a.png")
    out = tmp_path / "out"
    assert translate_main(["--checkpoint", str(path), "--input", str(tmp_path / "a.png"), "--output", str(out),
                           "--workers", "0"]) == 0
    assert Image.open(out / "a.png").size == (20, 16)
    assert translate_main(["--checkpoint", str(path), "--input", str(tmp_path / "a.png"), "--output",
                           str(tmp_path / "o2"), "--direction", "BtoA"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: --direction BtoA") and "latest_net_G_B.pth" in err
    (tmp_path / "bad.pth").write_bytes(b"\x00" * 10)
    assert translate_main(["--checkpoint", str(tmp_path / "bad.pth"), "--input", str(tmp_path / "a.png"),
                           "--output", str(tmp_path / "o3")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {tmp_path / 'bad.pth'}: not a network file")
    assert translate_main(["--checkpoint", str(tmp_path / "bad.pth"), "--arch", "unet", "--input",
                           str(tmp_path / "a.png"), "--output", str(tmp_path / "o4")]) == 2


# --------------------------------------------------------------------------- against the reference code itself
FIXTURES = Path(__file__).parent / "data" / "reference"  # made by make_fixtures.py (README.md there)
FOUND = {"cyclegan_resnet": "ResNet generator, 2 blocks, ngf 8, instance norm, 3 -> 3 channels (resnet_2blocks)",
         "cut_resnet": "ResNet generator, 2 blocks, ngf 8, instance norm, anti-aliased, 3 -> 3 channels",
         "pix2pix_unet": "U-Net generator, 5 levels, ngf 4, batch norm, 3 -> 3 channels (unet_32)",
         "cyclegan_D": "PatchGAN discriminator, 2 layers, ndf 8, instance norm, 3 channels in",
         "cut_D": "PatchGAN discriminator, 2 layers, ndf 8, instance norm, anti-aliased, 3 channels in"}


def fixture(name):
    return torch.load(FIXTURES / f"{name}.pt", weights_only=True)


@pytest.mark.parametrize("name", list(FOUND))
def test_i2i_computes_what_the_reference_code_computes(tmp_path, name, capsys):
    fx = fixture(name)
    path = _saved(tmp_path, fx["state"])
    ref = open_reference(path)
    assert FOUND[name] in ref.describe()
    with torch.no_grad():
        out = ref.build().eval()(fx["input"])
    assert out.shape == fx["output"].shape and fx["output"].std() > 0.1
    assert (out - fx["output"]).abs().max() < 1e-5
    if not name.endswith("_D"):  # and as a translator
        translator = load_translator(path, device="cpu")
        assert FOUND[name] in capsys.readouterr().err
        assert (translator(fx["input"]) - fx["output"]).abs().max() < 1e-5


def test_old_instance_norm_statistics_are_accepted_and_unused(tmp_path):
    fx = fixture("cyclegan_resnet")  # saved by an instance norm that kept running statistics
    old = [k for k in fx["state"] if k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert len(old) == 3 * 9 and fx["state"]["model.2.running_mean"].abs().sum() > 0
    new = {k: v for k, v in fx["state"].items() if k not in old}
    with torch.no_grad():
        outs = [open_reference(_saved(tmp_path, state, f"{i}.pth")).build().eval()(fx["input"])
                for i, state in enumerate((fx["state"], new))]
    assert torch.equal(outs[0], outs[1])


def test_an_imported_run_translates_as_the_reference(tmp_path, capsys):
    from i2i.cli.import_reference import main as import_main

    (tmp_path / "ref").mkdir()
    torch.save(fixture("cyclegan_resnet")["state"], tmp_path / "ref" / "latest_net_G_A.pth")
    torch.save(fixture("cyclegan_D")["state"], tmp_path / "ref" / "latest_net_D_A.pth")
    assert import_main([str(tmp_path / "ref" / "latest_net_G_A.pth"), "--model", "cyclegan", "--output",
                        str(tmp_path / "run")]) == 0
    translator = load_translator(tmp_path / "run", device="cpu")
    fx, d = fixture("cyclegan_resnet"), fixture("cyclegan_D")
    assert (translator(fx["input"]) - fx["output"]).abs().max() < 1e-5
    with torch.no_grad():
        assert (translator.model.D_A.eval()(d["input"]) - d["output"]).abs().max() < 1e-5
