"""i2i: image-to-image translation with GANs."""
from ._version import __version__


def load_translator(path, device=None, weights="ema", imports=(), trust_imports=False):
    """Load a checkpoint (or run folder) and return a callable :class:`Translator`
    (EMA weights where the run kept them, unless ``weights="raw"``).  The modules the
    checkpoint's config names in ``imports:`` are imported only if listed in ``imports``
    (or with ``trust_imports=True``): a checkpoint is data, and importing runs code."""
    from .translator import Translator

    return Translator.from_checkpoint(path, device=device, weights=weights, imports=imports,
                                      trust_imports=trust_imports)


__all__ = ["load_translator", "__version__"]
