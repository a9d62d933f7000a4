"""One way to put tensors back as they were (i2i.snapshot), and the places that use it."""
import pytest
import torch
from torch import nn

from i2i.engine.ema import EMA
from i2i.models import preserved_buffers
from i2i.snapshot import Snapshot, restored


def test_a_snapshot_copies_back_into_the_same_tensors():
    weight, stats = nn.Parameter(torch.tensor([1.0, 2.0])), torch.tensor([3.0, 4.0])
    view = stats[1:]
    snapshot = Snapshot([weight, stats])
    with torch.no_grad():
        weight.mul_(10)
    stats.add_(1)
    assert view.tolist() == [5.0]  # the saved values are copies
    snapshot.restore()
    assert weight.tolist() == [1.0, 2.0] and stats.tolist() == [3.0, 4.0]
    assert view.tolist() == [4.0] and weight.requires_grad  # in place: views and parameters stay what they were


@pytest.mark.parametrize("bad", [True, False])
def test_a_snapshot_restores_only_where_a_flag_on_the_device_says_so(bad):
    stats = torch.tensor([1.0, 2.0])
    snapshot = Snapshot([stats])
    stats.fill_(7.0)
    snapshot.restore(torch.tensor(bad))
    assert stats.tolist() == ([1.0, 2.0] if bad else [7.0, 7.0])


def test_restored_puts_tensors_back_on_exit_and_on_an_error():
    stats = torch.zeros(3)
    with restored([stats]) as snapshot:
        stats.add_(1)
    assert stats.tolist() == [0.0] * 3 and isinstance(snapshot, Snapshot)
    with pytest.raises(ValueError):
        with restored([stats]):
            stats.add_(2)
            raise ValueError
    assert stats.tolist() == [0.0] * 3


def test_batch_norm_statistics_are_preserved_through_a_training_forward():
    norm = nn.BatchNorm2d(2)
    before = {k: v.clone() for k, v in norm.state_dict().items()}
    with preserved_buffers(norm):
        norm(torch.randn(4, 2, 3, 3) + 5)
        assert norm.running_mean.abs().min() > 0.1 and int(norm.num_batches_tracked) == 1
    assert all(torch.equal(norm.state_dict()[k], v) for k, v in before.items())


def test_the_ema_weights_stand_in_for_the_live_ones_and_the_live_ones_come_back():
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = EMA(net, [net], decay=0.5)
    live = {k: v.clone() for k, v in net.state_dict().items()}
    for v in ema.shadow.values():
        v.fill_(0.25) if v.is_floating_point() else v.fill_(3)
    with pytest.raises(RuntimeError):
        with ema.applied():
            assert all(torch.equal(net.state_dict()[k], v) for k, v in ema.shadow.items())
            raise RuntimeError
    assert all(torch.equal(net.state_dict()[k], v) for k, v in live.items())
