"""The pretrained files i2i uses (FID Inception, VGG19, LPIPS): where each comes from, how it is checked, where it goes.

Each file is a :class:`PretrainedFile` (its name, its URLs, its SHA-256, the environment variable
that names a local copy).  :func:`locate` finds it, in this order:

1. the file given explicitly (``--inception-weights FILE``, ``model.vgg_weights``), used as given;
2. the file named by the entry's environment variable (``$I2I_INCEPTION_WEIGHTS``, ``$I2I_VGG_WEIGHTS``,
   ``$I2I_ALEXNET_WEIGHTS``, ``$I2I_LPIPS_ALEX_WEIGHTS``...);
3. the torch hub cache, ``<torch.hub.get_dir()>/checkpoints/`` (``$TORCH_HOME/hub/checkpoints``), where
   torchvision, torch-fidelity and pytorch-fid keep the same files, checked against the SHA-256;
4. a download into that cache: streamed with a progress bar (on a terminal) into a hidden temporary file beside
   its destination, renamed into place only once its SHA-256 matches; a failed, interrupted or wrong download
   leaves nothing behind.

``I2I_OFFLINE=1`` (``--offline`` on the commands that may download) never touches the network: a missing file is
then one line saying which file to put where, as is a download that fails.  ``I2I_WEIGHTS_URL=BASE`` fetches every
file from ``BASE/<file name>`` instead of its own URLs (a mirror, or a local server).  ``python -m i2i.pretrained``
fetches them all ahead (then copy the cache folder to a machine without a network).

A SHA-256 is recorded in full, or as a prefix of at least 8 hex digits (checked as ``torch.hub`` checks the hash
in a file name).  Files are read with ``torch.load(weights_only=True)``: no code in them ever runs.
"""
from __future__ import annotations

import hashlib
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import WeightsError
from .utils import current_umask

OFFLINE_ENV = "I2I_OFFLINE"
MIRROR_ENV = "I2I_WEIGHTS_URL"


@dataclass(frozen=True)
class PretrainedFile:
    title: str  #: what it is, in messages ("VGG19 weights")
    filename: str  #: its name in the cache
    urls: tuple[str, ...]  #: where it is downloaded from, tried in order
    sha256: str  #: hex digest, in full or its first 8+ digits
    env: str  #: environment variable naming a local copy
    option: str = ""  #: the option or config key naming a local copy, for messages ("--inception-weights FILE")
    aliases: tuple[str, ...] = ()  #: other names of the same file in the cache (other tools' copies)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[0-9a-f]{8,64}", self.sha256):
            raise ValueError(f"{self.filename}: sha256 must be 8 to 64 lowercase hex digits, got {self.sha256!r}")

    def matches(self, digest: str) -> bool:
        return digest.startswith(self.sha256)

    def sources(self) -> tuple[str, ...]:
        """The URLs to download from: ``$I2I_WEIGHTS_URL/<file name>`` where that is set, else :attr:`urls`."""
        base = os.environ.get(MIRROR_ENV, "").strip()
        return (f"{base.rstrip('/')}/{self.filename}",) if base else self.urls


INCEPTION = PretrainedFile(  # the TF inception-2015-12-05 graph ported to PyTorch (pytorch-fid, torch-fidelity)
    title="FID Inception weights",
    filename="weights-inception-2015-12-05-6726825d.pth",
    urls=("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
          "weights-inception-2015-12-05-6726825d.pth",
          "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"),
    sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
    env="I2I_INCEPTION_WEIGHTS",
    option="pass --inception-weights FILE",
    aliases=("pt_inception-2015-12-05-6726825d.pth",),
)
VGG19 = PretrainedFile(  # torchvision's VGG19_Weights.IMAGENET1K_V1
    title="VGG19 weights",
    filename="vgg19-dcbb9e9d.pth",
    urls=("https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",),
    sha256="dcbb9e9dad569fff7a846263a77324fc34978fea2bfb039c012d710e1776ae44",
    env="I2I_VGG_WEIGHTS",
    option="set model.vgg_weights",
)
ALEXNET = PretrainedFile(  # torchvision's AlexNet_Weights.IMAGENET1K_V1, the backbone of LPIPS
    title="AlexNet weights",
    filename="alexnet-owt-7be5be79.pth",
    urls=("https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",),
    sha256="7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02",
    env="I2I_ALEXNET_WEIGHTS",
)
VGG16 = PretrainedFile(  # torchvision's VGG16_Weights.IMAGENET1K_V1, the backbone of LPIPS-VGG
    title="VGG16 weights",
    filename="vgg16-397923af.pth",
    urls=("https://download.pytorch.org/models/vgg16-397923af.pth",),
    sha256="397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
    env="I2I_VGG16_WEIGHTS",
)
_LPIPS_URL = "https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/master/lpips/weights/v0.1/"
LPIPS_ALEX = PretrainedFile(  # the linear layers of LPIPS v0.1 (Zhang et al. 2018), as the lpips package ships them
    title="LPIPS (AlexNet) linear weights",
    filename="lpips-v0.1-alex-df73285e.pth",
    urls=(_LPIPS_URL + "alex.pth",),
    sha256="df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
    env="I2I_LPIPS_ALEX_WEIGHTS",
)
LPIPS_VGG = PretrainedFile(
    title="LPIPS (VGG) linear weights",
    filename="lpips-v0.1-vgg-a78928a0.pth",
    urls=(_LPIPS_URL + "vgg.pth",),
    sha256="a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
    env="I2I_LPIPS_VGG_WEIGHTS",
)
FILES: dict[str, PretrainedFile] = {"inception": INCEPTION, "vgg19": VGG19, "alexnet": ALEXNET, "vgg16": VGG16,
                                    "lpips_alex": LPIPS_ALEX, "lpips_vgg": LPIPS_VGG}


def cache_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def is_offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def where_to_put(entry: PretrainedFile) -> str:
    """The remedy, in words: which file to put where, or which option or variable names it."""
    option = f"{entry.option}, " if entry.option else ""
    return f"put {entry.filename} (from {entry.sources()[0]}) into {cache_dir()}, {option}or set ${entry.env} to its path"


def locate(entry: PretrainedFile, path: str | Path | None = None, source: str = "", *,
           offline: bool | None = None, progress: bool | None = None) -> Path:
    """The path of ``entry``'s file, found or downloaded (see the module doc); :class:`WeightsError` (one line)
    when there is none.  ``source`` names where ``path`` came from, for messages."""
    for given, origin in ((path, source or "argument"), (os.environ.get(entry.env), f"${entry.env}")):
        if given:
            p = Path(given).expanduser()
            if not p.is_file():
                raise WeightsError(f"{entry.title} file {p} (from {origin}) does not exist")
            return p
    for name in (entry.filename, *entry.aliases):
        cached = cache_dir() / name
        if cached.is_file():
            digest = sha256_of(cached)
            if not entry.matches(digest):
                raise WeightsError(f"{cached}: SHA-256 {digest} is not the expected {entry.sha256} (a damaged copy?); "
                                   f"delete it to download it again")
            return cached
    if is_offline() if offline is None else offline:
        raise WeightsError(f"{entry.title} not found and ${OFFLINE_ENV} is set: {where_to_put(entry)}")
    return download(entry, cache_dir(), progress=sys.stderr.isatty() if progress is None else progress)


def download(entry: PretrainedFile, folder: Path, progress: bool = True) -> Path:
    """Fetch ``entry`` into ``folder``, trying its URLs in order; its path there once its SHA-256 matches."""
    from .data.download import DownloadError, fetch

    folder.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in entry.sources():
        print(f"downloading {entry.title} from {url} into {folder}", file=sys.stderr)
        fd, tmp = tempfile.mkstemp(prefix=f".{entry.filename}.", suffix=".part", dir=folder)
        os.close(fd)
        part = Path(tmp)
        try:
            try:
                fetch(url, part, progress=progress, desc=entry.filename)
            except DownloadError as exc:
                failures.append(str(exc))
                continue
            digest = sha256_of(part)
            if not entry.matches(digest):
                raise WeightsError(f"{url}: SHA-256 {digest} is not the expected {entry.sha256}; "
                                   f"the download was deleted")
            os.chmod(part, 0o666 & ~current_umask())
            os.replace(part, folder / entry.filename)
            return folder / entry.filename
        finally:
            part.unlink(missing_ok=True)
    raise WeightsError(f"cannot download {entry.title} ({'; '.join(failures)}): {where_to_put(entry)}")


def load_state_dict(path: Path, title: str) -> dict:
    """The state dict in ``path``, read without running any code from it; one line if it is not one."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise WeightsError(f"cannot read {title} {path}: {(str(exc).splitlines() or [type(exc).__name__])[0]}") from None
    if not isinstance(state, dict):
        raise WeightsError(f"{path} is not a state dict of {title}")
    return state


def load_prefixed(net: torch.nn.Module, state: dict, prefix: str, path: Path, what: str) -> None:
    """Load ``net`` from the entries ``prefix + name`` of ``state`` (the file ``path``; its other entries are
    ignored); one line naming the first missing entry or the mismatch, ``what`` naming the expected file."""
    wanted = net.state_dict()
    found = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    missing = [k for k in wanted if k not in found]
    if missing:
        raise WeightsError(f"{path} is not {what} (no '{prefix}{missing[0]}')")
    try:
        net.load_state_dict({k: found[k] for k in wanted})
    except RuntimeError as exc:
        raise WeightsError(f"{path} does not fit {what}: {str(exc).splitlines()[-1].strip()}") from None


def main(argv: list[str] | None = None) -> int:
    """``python -m i2i.pretrained [NAME ...]``: find or fetch (and check) the named files, all by default."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m i2i.pretrained",
                                description="Download and check i2i's pretrained files into the torch hub cache "
                                            "(for a machine without a network, copy that folder over).")
    p.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(FILES)} (default: all)")
    args = p.parse_args(argv)
    unknown = [n for n in args.names if n not in FILES]
    if unknown:
        print(f"error: unknown pretrained file {unknown[0]!r}; known: {', '.join(FILES)}", file=sys.stderr)
        return 2
    try:
        for name in args.names or FILES:
            print(f"{name}: {locate(FILES[name])}")
    except WeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
