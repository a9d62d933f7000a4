"""Networks: normalization, initialization, generators (ResNet, U-Net, Tiramisu), discriminators,
projection heads, builders.

Importing this package registers the built-in generators, discriminators and heads.
"""
from . import autoencoder, blocks, build, cogan, discriminators, generators, heads, init, norms, taps, tiramisu, unit  # noqa: F401
from .build import build_discriminator, build_generator, build_head, check_net
from .init import apply_spectral_norm, init_weights
from .norms import norm_layer

__all__ = ["build_generator", "build_discriminator", "build_head", "check_net", "init_weights", "norm_layer", "apply_spectral_norm"]
