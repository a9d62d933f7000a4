"""i2i: image-to-image translation with GANs."""
__version__ = "0.1.0"


def load_translator(path, device=None, weights="ema"):
    """Load a checkpoint (or run folder) and return a callable :class:`Translator`
    (EMA weights where the run kept them, unless ``weights="raw"``)."""
    from .translator import Translator

    return Translator.from_checkpoint(path, device=device, weights=weights)


__all__ = ["load_translator", "__version__"]
