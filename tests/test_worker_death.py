"""A data loading process killed by the system (the out-of-memory killer, a stray kill) is one line, not a traceback."""
import os
import signal

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from i2i.cli.common import environment_error


class _DiesInWorker(Dataset):
    def __init__(self, sig=signal.SIGKILL):
        self.sig = sig

    def __len__(self):
        return 4

    def __getitem__(self, i):
        os.kill(os.getpid(), self.sig)  # as the out-of-memory killer (SIGKILL) or a stray kill does
        return torch.zeros(1)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")
@pytest.mark.parametrize("sig", ["SIGKILL", "SIGTERM"])  # torch words the two deaths differently
def test_a_killed_worker_is_one_line(sig):
    loader = DataLoader(_DiesInWorker(getattr(signal, sig)), batch_size=1, num_workers=1)
    with pytest.raises(RuntimeError) as err:  # torch's own report of the dead worker
        next(iter(loader))
    line = environment_error(err.value)
    assert line is not None and "\n" not in line
    assert line.startswith("a data loading process died (") and "data.num_workers" in line
    assert environment_error(RuntimeError("shape mismatch")) is None  # a bug stays a traceback
