"""Every objective moves a tiny generator towards a 2-D Gaussian mixture (fixed seed, CPU).

Target: the ring of 8 Gaussians (radius 2, std 0.05) of ``i2i.losses.toy``; the
sliced Wasserstein distance of 1000 samples to the target must fall below half
its value for the untrained generator after 300 G steps.  Two documented
exceptions: plain f-GAN total variation diverges on this problem (its tanh
output saturates), so it is checked with an R1 penalty ('fgan_tv+r1'); BEGAN
collapses to a single mode of the ring, so it is checked on a one-component
mixture.  WGAN-GP gets 600 G steps: at 300 its distance ratio is not settled
(0.45 to 1.06 of the start for lr 5e-4 to 2e-3 with torch 2.14 on one CPU, and it
differs between CPUs); at 600 it is 0.21 for both lr 1e-3 and 2e-3.
"""
import pytest
import torch

from i2i.losses.toy import RECIPES, generate, ring_centres, sample_mixture, sliced_wasserstein, train

pytestmark = pytest.mark.slow  # hundreds of steps a recipe, on one thread

STEPS = 300
LONGER = {"wgangp": 600}
SKIP = {"fgan_tv"}  # diverges on the ring without a penalty; see fgan_tv+r1


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _swd_ratio(recipe, centres, steps=STEPS):
    target = sample_mixture(centres, 0.05, 1000, torch.Generator().manual_seed(99))
    start = sliced_wasserstein(generate(train(recipe, 0, centres=centres)[0], 1000), target)
    end = sliced_wasserstein(generate(train(recipe, steps, centres=centres)[0], 1000), target)
    return start, end


@pytest.mark.parametrize("name", [n for n in RECIPES if n not in SKIP])
def test_variant_converges(name):
    centres = torch.tensor([[2.0, 0.0]]) if name == "began" else ring_centres()
    start, end = _swd_ratio(RECIPES[name], centres, LONGER.get(name, STEPS))
    assert end < 0.5 * start, f"{name}: sliced Wasserstein {start:.3f} -> {end:.3f}"
