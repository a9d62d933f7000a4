"""Dehazing methods that need no training, usable wherever a translator is: the dark channel prior."""
from .dcp import DarkChannelPrior, DCPResult, dark_channel, estimate_airlight, guided_filter

__all__ = ["DarkChannelPrior", "DCPResult", "dark_channel", "estimate_airlight", "guided_filter"]
