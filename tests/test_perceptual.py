"""VGG19 perceptual loss with random weights: values, gradients, isolation from the owner, weights lookup."""
import pytest
import torch
from torch import nn

from i2i.errors import WeightsError
from i2i.losses import PerceptualLoss
from i2i.losses.perceptual import LAYER_NAMES, WEIGHTS_ENV, WEIGHTS_FILE, layer_index, vgg19_features

SIZE = 32


@pytest.fixture
def loss():
    torch.manual_seed(0)
    return PerceptualLoss(layers=["relu1_2", "pool2"], weights="random")


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """An empty torch hub cache and no environment variable."""
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    return tmp_path / "hub" / "checkpoints"


def images(n=2, c=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, SIZE, SIZE, generator=g) * 2 - 1


def test_layer_names_follow_torchvision_indices():
    assert len(LAYER_NAMES) == 37
    assert (layer_index("relu1_1"), layer_index("pool1"), layer_index("conv3_4")) == (1, 4, 16)
    assert (layer_index("pool4"), layer_index("relu5_4"), layer_index("pool5")) == (27, 35, 36)
    assert layer_index(10) == 10
    with pytest.raises(ValueError, match="relu6_1"):
        layer_index("relu6_1")
    with pytest.raises(ValueError, match="37"):
        layer_index(37)
    from torchvision.models import vgg19

    with torch.device("meta"):
        reference = vgg19().features
    ours = vgg19_features()
    assert [type(m) for m in ours] == [type(m) for m in reference]
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in reference.state_dict().items()}


def test_default_compares_pool4_features():
    torch.manual_seed(0)
    loss = PerceptualLoss(weights="random")
    assert loss.layers == ["pool4"] and len(loss.vgg.features) == 28
    assert loss.features(images(1))["pool4"].shape == (1, 512, SIZE // 16, SIZE // 16)


def test_value_is_l1_of_imagenet_normalized_rgb_features(loss):
    x, y = images(seed=1), images(seed=2)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    net = loss.vgg.features

    def normalized(img):
        return ((img + 1) / 2 - mean) / std

    # relu1_2 is entry 3 and pool2 entry 9 of the features
    expected = (net[:4](normalized(x)) - net[:4](normalized(y))).abs().mean()
    expected = expected + (net[:10](normalized(x)) - net[:10](normalized(y))).abs().mean()
    assert torch.allclose(loss(x, y), expected, rtol=1e-5)
    mse = PerceptualLoss(layers=["relu1_2"], criterion="mse", weights="random", layer_weights=[3.0])
    mse.vgg.load_state_dict(loss.vgg.state_dict(), strict=False)
    f = mse.features
    assert torch.allclose(mse(x, y), 3 * ((f(x)["relu1_2"] - f(y)["relu1_2"]) ** 2).mean(), rtol=1e-5)


def test_zero_for_identical_images_and_gray_is_repeated(loss):
    x = images()
    assert loss(x, x.clone()).item() == 0.0
    gray = images(c=1)
    assert loss(gray, gray.repeat(1, 3, 1, 1)).item() == 0.0
    assert loss(images(seed=1), images(seed=2)).item() > 0


def test_gradient_reaches_the_input_but_not_the_vgg(loss):
    x = images().requires_grad_(True)
    loss(x, images(seed=5)).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(not p.requires_grad and p.grad is None for p in loss.vgg.parameters())


def test_never_in_state_dict_parameters_buffers_or_train_mode(loss):
    class Owner(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Conv2d(3, 3, 1)
            self.perceptual = loss

    owner = Owner()
    assert set(owner.state_dict()) == {"net.weight", "net.bias"}
    assert not any("vgg" in k or "features" in k for k in owner.state_dict())
    assert len(list(owner.parameters())) == 2 and list(owner.buffers()) == []
    assert list(loss.parameters()) == [] and loss.state_dict() == {}
    owner.load_state_dict(owner.state_dict())  # strict load: nothing missing
    owner.train()
    assert not loss.training and not loss.vgg.training and owner.net.training
    torch.optim.Adam(owner.parameters())  # the optimizer sees the conv only


def test_float32_under_bf16_autocast(loss):
    x, y = images(seed=1), images(seed=2)
    plain = loss(x, y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        feats = loss.features(x.bfloat16())
        mixed = loss(x.bfloat16(), y)
    assert all(f.dtype == torch.float32 for f in feats.values())
    assert mixed.dtype == torch.float32
    assert torch.allclose(mixed, loss(x.bfloat16().float(), y), rtol=1e-6)
    assert torch.allclose(plain, loss(x, y))


def test_moves_with_its_owner_and_stays_float32(loss):
    owner = nn.Sequential(nn.Conv2d(3, 3, 1))
    owner.perceptual = loss
    owner.to(torch.float64)
    assert owner[0].weight.dtype == torch.float64
    assert all(p.dtype == torch.float32 for p in loss.vgg.parameters())
    owner.to("meta")
    assert loss.device.type == "meta" and next(loss.vgg.parameters()).device.type == "meta"


def test_weights_from_env_file_and_cache(no_weights, tmp_path, monkeypatch):
    torch.manual_seed(3)
    saved = {f"features.{k}": v for k, v in vgg19_features(28).state_dict().items()}  # up to pool4
    saved["classifier.0.weight"] = torch.zeros(2, 2)  # the rest of a torchvision file is ignored
    path = tmp_path / "my_vgg.pth"
    torch.save(saved, path)
    monkeypatch.setenv(WEIGHTS_ENV, str(path))
    from_env = PerceptualLoss(weights=None)
    assert torch.equal(from_env.vgg.features[25].weight, saved["features.25.weight"])
    monkeypatch.delenv(WEIGHTS_ENV)
    no_weights.mkdir(parents=True)
    torch.save(saved, no_weights / WEIGHTS_FILE)  # in the cache, a file is used only if it is the published one
    with pytest.raises(WeightsError, match=f"{WEIGHTS_FILE}: SHA-256 .* is not the expected dcbb9e9d"):
        PerceptualLoss(layers=["relu1_1"])
    explicit = PerceptualLoss(layers=[3], weights=path)
    assert torch.equal(explicit.vgg.features[2].weight, saved["features.2.weight"])


def test_missing_weights_say_which_file_goes_where(no_weights):
    with pytest.raises(WeightsError) as err:
        PerceptualLoss()
    msg = str(err.value)
    assert "\n" not in msg
    assert f"put {WEIGHTS_FILE} " in msg and str(no_weights) in msg and WEIGHTS_ENV in msg
    assert WEIGHTS_FILE == "vgg19-dcbb9e9d.pth"


def test_bad_weight_files(no_weights, tmp_path, monkeypatch):
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "absent.pth"))
    with pytest.raises(WeightsError, match=f"absent.pth \\(from \\${WEIGHTS_ENV}\\) does not exist"):
        PerceptualLoss()
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read VGG19 weights .*junk.pth"):
        PerceptualLoss(weights=junk)
    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(1)}, other)
    with pytest.raises(WeightsError, match="not a torchvision VGG19 state dict"):
        PerceptualLoss(weights=other)


def test_bad_arguments():
    with pytest.raises(ValueError, match="criterion"):
        PerceptualLoss(criterion="l3", weights="random")
    with pytest.raises(ValueError, match="layer_weights has 1 entries for 2 layers"):
        PerceptualLoss(layers=["relu1_1", "relu2_1"], layer_weights=[1.0], weights="random")
    with pytest.raises(ValueError, match="differ in batch or image size"):
        PerceptualLoss(layers=["relu1_1"], weights="random")(images(), images()[:1])


def test_building_it_leaves_the_global_rng_alone_and_the_random_network_is_always_the_same():
    # DehazeGAN builds its perceptual loss at its first step: had the build drawn from the global RNG, a resumed
    # run (which builds it at another point of the stream) would draw other dropout masks than an uninterrupted one
    from i2i.losses.perceptual import vgg19_features

    torch.manual_seed(1)
    before = torch.get_rng_state()
    a = vgg19_features(4)
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(2)
    assert torch.equal(vgg19_features(4)[0].weight, a[0].weight)
