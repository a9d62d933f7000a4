"""i2i: image-to-image translation with GANs."""
__version__ = "0.1.0"


def load_translator(path, device=None):
    """Load a checkpoint (or run folder) and return a callable :class:`Translator`."""
    from .translator import Translator

    return Translator.from_checkpoint(path, device=device)


__all__ = ["load_translator", "__version__"]
