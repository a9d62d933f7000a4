"""i2i-import: reference network files as an i2i run folder that i2i-train --resume fine-tunes."""
import pytest
import torch

from i2i.checkpoint import list_checkpoints, load_checkpoint
from i2i.cli.import_reference import main as import_main
from i2i.cli.train import main as train_main
from i2i.nn import build_discriminator, build_generator

G = {"name": "resnet", "ngf": 4, "n_blocks": 1, "norm": "instance"}
D = {"name": "patchgan", "ndf": 4, "n_layers": 1, "norm": "instance"}
TINY_DATA = ["--set", "data.root=builtin:shapes", "--set", "data.load_size=32", "--set", "data.crop_size=32",
             "--set", "data.max_items=4", "--set", "data.num_workers=0", "--set", "log.progress=false",
             "--set", "log.tensorboard=false"]


def reference_files(folder, g=G, d=D, names=("G_A", "G_B", "D_A")):
    """Networks saved as the reference repositories save them: a bare state dict per ``latest_net_X.pth``."""
    folder.mkdir(exist_ok=True)
    torch.manual_seed(0)
    nets = {}
    for name in names:
        nets[name] = build_generator(g, 3, 3) if name.startswith("G") else build_discriminator(d, 3)
        torch.save(nets[name].state_dict(), folder / f"latest_net_{name}.pth")
    return nets


def test_a_cyclegan_imports_and_resumes(tmp_path, capsys):
    nets = reference_files(tmp_path / "ref")
    run = tmp_path / "runs" / "imported"
    assert import_main([str(tmp_path / "ref" / "latest_net_G_A.pth"), str(tmp_path / "ref" / "latest_net_G_B.pth"),
                        "--model", "cyclegan", "--output", str(run), "--set", "train.out_dir=" + str(tmp_path / "runs")]
                       ) == 0
    err = capsys.readouterr().err
    assert "latest_net_D_A.pth: PatchGAN discriminator, 1 layers, ndf 4" in err
    assert "no discriminator file for D_B" in err and f"i2i-train --resume {run} --set data.root=DIR" in err
    assert (run / "config.yaml").is_file() and [p.name for p in list_checkpoints(run)] == ["step_0000000.pt"]
    state = load_checkpoint(run)
    assert state["step"] == 0 and set(state["optimizers"]) == {"G", "D"}
    for role in ("G_A", "G_B", "D_A"):
        for key, value in nets[role].state_dict().items():
            assert torch.equal(state["model"][f"{role}.{key}"], value), (role, key)
    assert state["config"]["nets"]["G"]["ngf"] == 4 and state["config"]["nets"]["D"]["n_layers"] == 1

    # without a data root, a resume says which setting to give
    assert train_main(["--resume", str(run)]) == 2
    assert "data.root" in capsys.readouterr().err.strip().splitlines()[-1]
    assert train_main(["--resume", str(run), *TINY_DATA, "--set", "train.max_steps=2"]) == 0
    assert [p.name for p in list_checkpoints(run)][-1] == "step_0000002.pt"
    after = load_checkpoint(run)
    assert after["step"] == 2 and after["optimizers"]["G"]["state"]  # Adam's moments exist: it stepped
    assert not torch.equal(after["model"]["G_A.model.1.weight"], state["model"]["G_A.model.1.weight"])


def test_pix2pix_and_cut_import_one_generator(tmp_path, capsys):
    unet = {"name": "unet", "ngf": 2, "num_downs": 5, "norm": "batch"}
    torch.manual_seed(0)
    g = build_generator(unet, 3, 3)
    d = build_discriminator({**D, "norm": "batch"}, 6)  # pix2pix's D sees A and B
    (tmp_path / "p").mkdir()
    torch.save(g.state_dict(), tmp_path / "p" / "latest_net_G.pth")
    torch.save(d.state_dict(), tmp_path / "p" / "latest_net_D.pth")
    assert import_main([str(tmp_path / "p" / "latest_net_G.pth"), "--model", "pix2pix", "--output",
                        str(tmp_path / "pix"), *TINY_DATA]) == 0
    state = load_checkpoint(tmp_path / "pix")
    assert torch.equal(state["model"]["D.model.0.weight"], d.state_dict()["model.0.weight"])
    assert state["config"]["nets"]["G"]["dropout"] is True  # as pix2pix trains its U-Net
    capsys.readouterr()

    # CUT: its default discriminator is anti-aliased, as i2i's CUT's is
    aa = {**G, "antialias": True, "n_blocks": 2}
    reference_files(tmp_path / "c", g=aa, names=("G",))
    torch.manual_seed(1)
    cut_d = build_discriminator({**D, "antialias": True}, 3)
    torch.save({**cut_d.state_dict(), "model.2.filt": torch.ones(4, 1, 3, 3) / 9}, tmp_path / "c" / "latest_net_D.pth")
    assert import_main([str(tmp_path / "c" / "latest_net_G.pth"), "--model", "cut", "--output",
                        str(tmp_path / "cut"), *TINY_DATA]) == 0
    assert "anti-aliased" in capsys.readouterr().err
    state = load_checkpoint(tmp_path / "cut")
    assert state["config"]["nets"]["D"]["antialias"] is True
    assert torch.equal(state["model"]["D.model.3.weight"], cut_d.state_dict()["model.3.weight"])
    assert train_main(["--resume", str(tmp_path / "cut"), "--set", "train.max_steps=1", "--set",
                       "model.num_patches=8"]) == 0
    assert load_checkpoint(tmp_path / "cut")["step"] == 1


def test_bad_imports_are_one_line_and_write_nothing(tmp_path, capsys):
    reference_files(tmp_path / "ref")
    g_a, g_b = str(tmp_path / "ref" / "latest_net_G_A.pth"), str(tmp_path / "ref" / "latest_net_G_B.pth")
    (tmp_path / "taken").mkdir()
    (tmp_path / "junk.pth").write_bytes(b"junk")
    cases = [([g_a, g_b, "--model", "pix2pix", "--output", str(tmp_path / "o1")], 2, "pix2pix has 1 generator"),
             ([g_a, "--model", "cyclegan", "--output", str(tmp_path / "taken")], 2, "exists"),
             ([g_a, "--model", "cyclegan", "--output", str(tmp_path / "ref")], 2, "exists"),
             ([str(tmp_path / "junk.pth"), "--model", "cut", "--output", str(tmp_path / "o2")], 1, "not a network file"),
             ([str(tmp_path / "ref" / "latest_net_D_A.pth"), "--model", "cut", "--output", str(tmp_path / "o3")], 1,
              "a discriminator"),
             ([g_a, "--model", "cyclegan", "--output", str(tmp_path / "o4"), "--set", "nets.G.ngf=5"], 2,
              "latest_net_G_A.pth holds a network with ngf 4")]
    for argv, code, words in cases:
        assert import_main(argv) == code, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("error: ") and words in err[-1], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.pth", "ref", "taken"]
    assert not any((tmp_path / "taken").iterdir())
