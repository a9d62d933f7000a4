"""The library translator on images smaller than the generator's bottleneck: padded and translated."""
import numpy as np
import pytest
import torch

from i2i.configure import build_config
from i2i.models import build_model
from i2i.translator import Translator

DATA = {"root": "builtin:shapes", "load_size": 32, "crop_size": 32, "batch_size": 1, "num_workers": 0,
        "max_items": 4}
MODELS = {
    "cyclegan": {"model": "cyclegan", "nets": {"G": {"name": "resnet", "n_blocks": 1, "ngf": 8},
                                               "D": {"ndf": 8, "n_layers": 1}}, "data": DATA},
    "unit": {"model": "unit", "nets": {"G": {"dim": 4, "n_res": 2}, "D": {"ndf": 4, "n_layers": 2, "num_scales": 2}},
             "data": DATA},
}


def translator(name="cyclegan"):
    torch.manual_seed(0)
    cfg = build_config(MODELS[name])
    return Translator(build_model(cfg), cfg, torch.device("cpu"))


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("h, w", [(1, 1), (2, 3), (4, 4), (3, 40)])
def test_images_smaller_than_the_bottleneck_are_padded_and_translated(name, h, w):
    out = translator(name)(np.full((h, w, 3), 128, np.uint8))
    assert out.shape == (h, w, 3) and out.dtype == np.uint8
