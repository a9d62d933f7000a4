"""i2i: image-to-image translation with GANs."""
from ._version import __version__


def load_translator(path, device=None, weights="ema", imports=(), trust_imports=False, arch=None):
    """Load a checkpoint (a run folder, or a folder of ``i2i-export --format safetensors``) and return a
    callable :class:`Translator`
    (EMA weights where the run kept them, unless ``weights="raw"``).  The modules the
    checkpoint's config names in ``imports:`` are imported only if listed in ``imports``
    (or with ``trust_imports=True``): a checkpoint is data, and importing runs code.
    A ``*.pth`` generator file of pytorch-CycleGAN-and-pix2pix or contrastive-unpaired-translation is read
    too (:mod:`i2i.reference`; ``arch``, e.g. ``"resnet_9blocks"``, where its keys do not tell its architecture)."""
    from .translator import Translator

    return Translator.from_checkpoint(path, device=device, weights=weights, imports=imports,
                                      trust_imports=trust_imports, arch=arch)


__all__ = ["load_translator", "__version__"]
