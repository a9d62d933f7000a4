"""Make the reference fixtures of tests/test_reference.py by running the reference repositories' own networks.

Usage (see README.md beside this file):

    python tests/data/reference/make_fixtures.py REPO_DIR [OUT_DIR]

``REPO_DIR`` is an extracted tree of taesungp/contrastive-unpaired-translation; its ``models/networks.py``
is imported from there (nothing of it is copied here).  Each fixture is a ``.pt`` file of tensors only:
``state`` (the network's state dict as the repository saves it), ``input`` and ``output`` (the network's
eval-mode output for ``input``).
"""
from __future__ import annotations

import functools
import importlib.util
import sys
import types
from pathlib import Path

import torch
from torch import nn


def reference_networks(repo: Path):
    """``models/networks.py`` of ``repo`` as a module, without running the package's ``__init__``."""
    models = repo / "models"
    package = types.ModuleType("refmodels")
    package.__path__ = [str(models)]
    sys.modules["refmodels"] = package
    spec = importlib.util.spec_from_file_location("refmodels.networks", models / "networks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["refmodels.networks"] = module
    spec.loader.exec_module(module)
    return module


def warm_up(net: nn.Module, shape, steps: int = 3) -> None:
    """A few training-mode forward passes, so that running statistics hold values other than 0 and 1."""
    net.train()
    with torch.no_grad():
        for _ in range(steps):
            net(torch.randn(shape) * 0.8 + 0.1)


def eval_output(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    net.eval()
    with torch.no_grad():
        return net(x)


def save(path: Path, state: dict, x: torch.Tensor, y: torch.Tensor) -> None:
    torch.save({"state": {k: v.clone() for k, v in state.items()}, "input": x, "output": y}, path)
    print(f"{path.name}: {sum(v.numel() for v in state.values())} values, output std {y.std():.3f}")


def main(repo: str, out: str = ".") -> None:
    net = reference_networks(Path(repo))
    out_dir = Path(out)
    instance, batch = net.get_norm_layer("instance"), net.get_norm_layer("batch")
    # the instance norm of the older pytorch-CycleGAN-and-pix2pix (it kept running statistics): the keys old files carry
    old_instance = functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=True)

    # CycleGAN: the plain ResNet generator (no anti-aliasing), saved with the old instance norm's keys
    torch.manual_seed(0)
    g = net.ResnetGenerator(3, 3, ngf=8, norm_layer=old_instance, n_blocks=2, no_antialias=True, no_antialias_up=True)
    net.init_weights(g, "normal", init_gain=0.1)
    warm_up(g, (2, 3, 32, 32))
    old_state = g.state_dict()
    # today's reference loader drops those keys and runs instance norm without running statistics
    g_now = net.ResnetGenerator(3, 3, ngf=8, norm_layer=instance, n_blocks=2, no_antialias=True, no_antialias_up=True)
    g_now.load_state_dict({k: v for k, v in old_state.items()
                           if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))})
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    save(out_dir / "cyclegan_resnet.pt", old_state, x, eval_output(g_now, x))

    # its PatchGAN discriminator (net_D_A.pth), 2 layers
    torch.manual_seed(1)
    d = net.NLayerDiscriminator(3, ndf=8, n_layers=2, norm_layer=instance, no_antialias=True)
    net.init_weights(d, "normal", init_gain=0.1)
    save(out_dir / "cyclegan_D.pt", d.state_dict(), x, eval_output(d, x))

    # pix2pix: U-Net with batch norm and dropout, 5 levels (32 px reach 1 x 1), ngf 4 to keep the file small
    torch.manual_seed(2)
    u = net.UnetGenerator(3, 3, 5, ngf=4, norm_layer=batch, use_dropout=True)
    net.init_weights(u, "normal", init_gain=0.1)
    warm_up(u, (4, 3, 32, 32))
    save(out_dir / "pix2pix_unet.pt", u.state_dict(), x, eval_output(u, x))

    # CUT: the anti-aliased ResNet generator (the repository's default)
    torch.manual_seed(3)
    c = net.ResnetGenerator(3, 3, ngf=8, norm_layer=instance, n_blocks=2, no_antialias=False, no_antialias_up=False)
    net.init_weights(c, "normal", init_gain=0.1)
    save(out_dir / "cut_resnet.pt", c.state_dict(), x, eval_output(c, x))

    # and its anti-aliased PatchGAN discriminator (the repository's default), 2 layers
    torch.manual_seed(4)
    cd = net.NLayerDiscriminator(3, ndf=8, n_layers=2, norm_layer=instance, no_antialias=False)
    net.init_weights(cd, "normal", init_gain=0.1)
    save(out_dir / "cut_D.pt", cd.state_dict(), x, eval_output(cd, x))


if __name__ == "__main__":
    main(*sys.argv[1:])
