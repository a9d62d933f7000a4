"""Loss scaling for fp16 training."""
from __future__ import annotations

import torch


class LossScalers:
    """fp16 loss scaling: one ``GradScaler`` per optimizer phase, a no-op unless ``amp`` is fp16 (bf16 has
    fp32's range and needs none).

    Each phase's scaler scales that phase's loss, unscales its group's gradients, steps and is updated
    once per iteration in which the phase runs.  One scaler for all phases could not be: a group stepped
    by two phases of one iteration (``D`` and the lazy ``D_reg``) would step one optimizer twice between
    two updates, which ``GradScaler`` refuses; and an overflow in one phase would lower the scale of the
    others.  A checkpoint holds ``{phase: state}``; older ones held one scaler's state, given to every
    phase, and a state written without fp16 (empty) leaves the scalers at their initial scale.
    """

    def __init__(self, device: torch.device, amp: str, phases) -> None:
        self.scalers = {name: torch.amp.GradScaler(device.type, enabled=(amp == "fp16")) for name in phases}

    def __getitem__(self, phase: str) -> torch.amp.GradScaler:
        return self.scalers[phase]

    def state_dict(self) -> dict:
        return {name: s.state_dict() for name, s in self.scalers.items()}

    def load_state_dict(self, state: dict) -> None:
        one = "scale" in state  # the single scaler of older checkpoints
        for name, scaler in self.scalers.items():
            saved = state if one else state.get(name, {})
            if saved:  # empty: written without fp16
                scaler.load_state_dict(saved)
