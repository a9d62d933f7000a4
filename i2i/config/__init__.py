"""Run configuration: typed sections (:mod:`.schema`) and YAML trees (:mod:`.tree`).

This package imports nothing else of i2i but its error types and file helpers:
it knows types and ranges; each part of the toolkit checks its own names
(:mod:`i2i.configure` puts the two together).
"""
from .schema import (Config, DataConfig, DivergenceConfig, EmaConfig, EvalConfig, GanLossConfig, LogConfig, LossConfig, ModelSettings,
                     NetConfig, OptimConfig, PenaltyConfig, TrainConfig, rule)
from .tree import (check_rules, expand_group_defaults, from_dict, make_config, merge, model_name, parse_overrides,
                   read_yaml, save_config, to_dict, unknown_key)

__all__ = [
    "Config", "DataConfig", "DivergenceConfig", "EmaConfig", "EvalConfig", "GanLossConfig", "LogConfig", "LossConfig", "ModelSettings",
    "NetConfig", "OptimConfig", "PenaltyConfig", "TrainConfig", "rule", "check_rules", "expand_group_defaults",
    "from_dict", "make_config", "merge", "model_name", "parse_overrides", "read_yaml", "save_config", "to_dict",
    "unknown_key",
]
