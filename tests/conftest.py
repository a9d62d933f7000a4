"""Shared test setup: no test downloads pretrained weights (tests of the download serve them from 127.0.0.1)."""
import pytest


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("I2I_OFFLINE", "1")
    monkeypatch.delenv("I2I_WEIGHTS_URL", raising=False)
