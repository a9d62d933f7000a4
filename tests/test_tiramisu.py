"""FC-DenseNet ("Tiramisu") generator: shapes, range, configuration, parameter count."""
import pytest
import torch
from torch import nn

from i2i.config import NetConfig
from i2i.nn import build_generator
from i2i.nn.tiramisu import DenseBlock, TiramisuGenerator
from i2i.registry import GENERATORS

TINY = dict(n_blocks=2, layers=2, bottleneck_layers=3, growth=4, first_channels=8, up_channels=8)


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_registered_and_built_from_config():
    assert "tiramisu" in GENERATORS
    net = build_generator(NetConfig("tiramisu", params=dict(TINY)), in_channels=1, out_channels=3)
    assert isinstance(net, TiramisuGenerator) and net.size_multiple == 4


@pytest.mark.parametrize("channels", [(3, 3), (1, 3), (3, 1)])
@pytest.mark.parametrize("size", [(32, 32), (16, 48)])
def test_output_shape_and_range(channels, size):
    torch.manual_seed(0)
    net = GENERATORS.build("tiramisu", in_channels=channels[0], out_channels=channels[1], **TINY)
    out = net(torch.randn(2, channels[0], *size) * 5)
    assert out.shape == (2, channels[1], *size)
    assert out.abs().max() <= 1.0
    assert out.std() > 0


def test_default_is_five_levels_of_four_layers():
    with torch.device("meta"):
        net = GENERATORS.build("tiramisu")
    assert net.size_multiple == 32
    assert [len(b.layers) for b in net.down_blocks] == [4] * 5 == [len(b.layers) for b in net.up_blocks]
    assert len(net.bottleneck.layers) == 15
    assert net.first.out_channels == 48
    # every down block: 48 + 4 * 12 = 96 maps, compressed to 48 by the transition
    assert [b.out_channels for b in net.down_blocks] == [96] * 5
    assert [d[2].out_channels for d in net.downs] == [48] * 5
    assert all(isinstance(d[-1], nn.AvgPool2d) and d[3].p == 0.2 for d in net.downs)
    assert net.bottleneck.out_channels == 48 + 15 * 12
    # transition ups: 3x3 stride-2 to 48 maps; concatenated with the 96-map skip
    assert all((u.kernel_size, u.stride, u.out_channels) == ((3, 3), (2, 2), 48) for u in net.ups)
    assert [u.in_channels for u in net.ups] == [228] + [192] * 4
    assert net.last.in_channels == 48 + 96 + 4 * 12 and net.last.kernel_size == (1, 1)
    with pytest.raises(ValueError, match="40x40 is not divisible by 32"):
        GENERATORS.build("tiramisu", **{**TINY, "n_blocks": 5})(torch.zeros(1, 3, 40, 40))


def test_layers_as_list_mirror_on_the_way_up():
    net = GENERATORS.build("tiramisu", n_blocks=3, layers=[2, 3, 4], bottleneck_layers=5, growth=4,
                           first_channels=8, up_channels=6, compression=0.25)
    assert [len(b.layers) for b in net.down_blocks] == [2, 3, 4]
    assert [len(b.layers) for b in net.up_blocks] == [4, 3, 2]
    # 8 -> 16 (skip) -> floor(0.25 * 16) = 4 -> 16 (skip) -> 4 -> 20 (skip) -> 5
    assert [b.out_channels for b in net.down_blocks] == [16, 16, 20]
    assert [d[2].out_channels for d in net.downs] == [4, 4, 5]
    assert net.up_blocks[0].layers[0][0].num_features == 6 + 20
    assert net(torch.randn(1, 3, 16, 24)).shape == (1, 3, 16, 24)
    with pytest.raises(ValueError, match="2 entries"):
        GENERATORS.build("tiramisu", n_blocks=3, layers=[2, 3])
    with pytest.raises(ValueError, match="compression"):
        GENERATORS.build("tiramisu", compression=0)


def test_parameter_count_by_hand():
    """n_blocks 2, 2 layers of growth 4, bottleneck 3, 8 first and up maps, in = out = 3."""

    def layer(c):  # BatchNorm (scale + shift) and a bias-free 3x3 conv to 4 maps
        return 2 * c + c * 4 * 9

    first = 3 * 8 * 9
    down = layer(8) + layer(12) + (2 * 16 + 16 * 8)  # block 8 -> 16, transition 16 -> 8 (1x1)
    bottleneck = layer(8) + layer(12) + layer(16)  # 8 -> 20
    up1 = 20 * 8 * 9 + layer(24) + layer(28)  # transposed conv 20 -> 8, + skip 16, block -> 32
    up2 = 32 * 8 * 9 + layer(24) + layer(28)
    last = 32 * 3 + 3  # 1x1 conv with bias
    expected = first + 2 * down + bottleneck + up1 + up2 + last
    assert expected == 11219
    assert n_params(GENERATORS.build("tiramisu", **TINY)) == expected


def test_dense_block_concatenates_input_and_new_maps():
    torch.manual_seed(0)
    block = DenseBlock(5, 3, 2, dropout=0.0, norm="none")
    x = torch.randn(1, 5, 8, 8)
    y = block(x)
    assert y.shape == (1, 11, 8, 8) and torch.equal(y[:, :5], x)
    # the second layer sees the input and the first layer's two maps
    assert block.layers[1][2].in_channels == 7


def test_dropout_only_while_training():
    torch.manual_seed(0)
    net = GENERATORS.build("tiramisu", **TINY, norm="none")
    x = torch.randn(1, 3, 16, 16)
    net.eval()
    assert torch.equal(net(x), net(x))
    net.train()
    assert not torch.equal(net(x), net(x))
    nodrop = GENERATORS.build("tiramisu", **TINY, dropout=0.0)
    assert not any(isinstance(m, nn.Dropout) for m in nodrop.modules())
