"""The library translator on what a researcher may hand it: PIL images of any mode, 16-bit arrays,
images smaller than the generator's bottleneck, and inputs it cannot take (a ValueError naming them)."""
import numpy as np
import pytest
import torch
from PIL import Image

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


@pytest.fixture(scope="module")
def tr():
    return translator()


@pytest.fixture(scope="module")
def rgb():
    return np.random.default_rng(0).integers(0, 256, (24, 20, 3), dtype=np.uint8)


@pytest.mark.parametrize("mode, same_as", [("P", "RGB"), ("CMYK", "RGB"), ("YCbCr", "RGB"), ("LA", "L"),
                                           ("1", "L"), ("RGBA", "RGB")])
def test_a_pil_image_of_any_mode_is_translated_as_its_rgb_or_gray_version(tr, rgb, mode, same_as):
    image = Image.fromarray(rgb).convert(mode)
    out = tr(image)
    assert isinstance(out, Image.Image) and out.size == (20, 24)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(tr(image.convert(same_as))))


def test_16_bit_images_are_scaled_to_8_bits(tr, rgb):
    expected = tr(rgb[:, :, 0])
    np.testing.assert_array_equal(tr(rgb[:, :, 0].astype(np.uint16) * 257), expected)
    np.testing.assert_array_equal(np.asarray(tr(Image.fromarray(rgb[:, :, 0].astype(np.uint16) * 257))), expected)


def test_alpha_is_dropped_and_views_are_taken(tr, rgb):
    np.testing.assert_array_equal(tr(np.dstack([rgb, rgb[:, :, :1]])), tr(rgb))
    np.testing.assert_array_equal(tr(np.dstack([rgb[:, :, 0], rgb[:, :, 1]])), tr(rgb[:, :, 0]))
    np.testing.assert_array_equal(tr(rgb[::2, ::-1]), tr(np.ascontiguousarray(rgb[::2, ::-1])))


@pytest.mark.parametrize("image, message", [
    (np.zeros((8, 8, 3), np.float32), "dtype float32"),
    (np.zeros((8, 8, 3), np.int64), "dtype int64"),
    (np.zeros((8, 8, 5), np.uint8), "shape (8, 8, 5)"),
    (np.zeros((1, 8, 8, 3), np.uint8), "shape (1, 8, 8, 3)"),
    (np.zeros(8, np.uint8), "shape (8,)"),
    (np.zeros((0, 8, 3), np.uint8), "empty array (shape (0, 8, 3))"),
    (Image.new("F", (8, 8)), "mode F"),
    (torch.zeros(1, 8, 8), "takes 3 channels, got 1"),
    (torch.zeros(8, 8), "shape (8, 8)"),
    (torch.zeros(1, 1, 3, 8, 8), "shape (1, 1, 3, 8, 8)"),
    (torch.zeros(3, 8, 8, dtype=torch.uint8), "torch.uint8"),
    (torch.zeros(3, 0, 8), "empty tensor"),
])
def test_an_input_it_cannot_take_is_a_value_error_naming_it(tr, image, message):
    with pytest.raises(ValueError, match="image: ") as info:
        tr(image)
    assert message in str(info.value)


def test_a_tensor_comes_back_with_the_dtype_it_came_in(tr):
    x = torch.rand(3, 16, 16, dtype=torch.float64) * 2 - 1
    out = tr(x)
    assert out.dtype == torch.float64 and out.shape == x.shape
    torch.testing.assert_close(out.float(), tr(x.float()))


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("h, w", [(1, 1), (2, 3), (4, 4), (3, 40)])
def test_images_smaller_than_the_bottleneck_are_padded_and_translated(name, h, w):
    out = translator(name)(np.full((h, w, 3), 128, np.uint8))
    assert out.shape == (h, w, 3) and out.dtype == np.uint8
