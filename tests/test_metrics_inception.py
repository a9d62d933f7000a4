"""FID Inception loading: weight lookup order, clear errors, and the real network on a random state dict."""
import pytest
import torch

from i2i.errors import WeightsError
from torch import nn

from i2i.metrics import InceptionFeatures, MetricSuite, find_inception_weights, load_inception
from i2i.metrics import inception as inc


@pytest.fixture()
def no_weights(tmp_path, monkeypatch):
    """An empty torch hub cache and no environment variable."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.delenv(inc.WEIGHTS_ENV, raising=False)
    return tmp_path


def test_missing_weights_is_one_line_error(no_weights):
    with pytest.raises(WeightsError) as err:
        find_inception_weights()
    msg = str(err.value)
    assert "\n" not in msg and inc.WEIGHTS_ENV in msg and "--inception-weights" in msg
    with pytest.raises(WeightsError):
        MetricSuite(["fid"])  # fails at construction, before any image


def test_lookup_order(no_weights, monkeypatch):
    cache = no_weights / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / inc.WEIGHTS_FILES[1]).write_bytes(b"x")  # pytorch-fid's name for it, but not the published file
    with pytest.raises(WeightsError, match=f"{inc.WEIGHTS_FILES[1]}: SHA-256 .* is not the expected 6726825d"):
        find_inception_weights()
    env_file = no_weights / "env.pth"
    env_file.write_bytes(b"x")
    monkeypatch.setenv(inc.WEIGHTS_ENV, str(env_file))
    assert find_inception_weights() == env_file
    given = no_weights / "given.pth"
    given.write_bytes(b"x")
    assert find_inception_weights(given) == given
    with pytest.raises(WeightsError, match="missing.pth"):
        find_inception_weights(no_weights / "missing.pth")
    monkeypatch.setenv(inc.WEIGHTS_ENV, str(no_weights / "gone.pth"))
    with pytest.raises(WeightsError, match=inc.WEIGHTS_ENV):
        find_inception_weights()


def test_bad_weights_files(no_weights):
    junk = no_weights / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read"):
        load_inception(junk)
    other = no_weights / "other.pth"
    torch.save({"weight": torch.zeros(2)}, other)
    with pytest.raises(WeightsError, match="not an FID Inception"):
        load_inception(other)


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """A state dict of the FID Inception architecture with random values (the real file cannot be fetched here)."""
    net_cls = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3").FeatureExtractorInceptionV3
    mp = pytest.MonkeyPatch()
    mp.setattr(net_cls, "load_state_dict", lambda self, *a, **k: None)
    mp.setattr(torch, "load", lambda *a, **k: {})
    try:
        torch.manual_seed(0)
        net = net_cls("x", ["2048"], feature_extractor_weights_path="unused")
    finally:
        mp.undo()
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save(net.state_dict(), path)
    return path


@pytest.mark.smoke
def test_real_network_loads_and_quantizes(random_weights, monkeypatch):
    monkeypatch.setenv(inc.WEIGHTS_ENV, str(random_weights))
    model = load_inception()
    assert not any(p.requires_grad for p in model.parameters())
    monkeypatch.setattr(torch.backends.mkldnn, "enabled", False)  # oneDNN's first-call set-up takes seconds on CPU
    feats, logits = model(torch.rand(2, 3, 24, 24) * 2 - 1)
    assert feats.shape == (2, 2048) and logits.shape == (2, 1008)
    assert (feats >= 0).all() and feats.dtype == torch.float32  # pool_3 comes after ReLU
    torch.testing.assert_close(logits, feats @ model.network.fc.weight.T, rtol=1e-4, atol=1e-4)  # bias-free


def test_wrapper_feeds_uint8_rgb():
    seen = []

    class Network(nn.Module):
        def forward(self, x):
            seen.append(x)
            return x.float().mean(dim=(2, 3)), x.float().sum(dim=(2, 3))

    wrapper = InceptionFeatures(Network())
    gray = torch.tensor([-1.0, -0.2, 0.5, 1.0]).view(1, 1, 2, 2)
    wrapper(gray)
    assert seen[0].dtype == torch.uint8 and seen[0].shape == (1, 3, 2, 2)
    assert seen[0][0, 2].flatten().tolist() == [0, 102, 191, 255]
