"""Download the public pix2pix and CycleGAN datasets.

Archives come from ``{base}/pix2pix/datasets/NAME.tar.gz`` and
``{base}/cyclegan/datasets/NAME.zip`` with ``base`` = ``http://efrosgans.eecs.berkeley.edu``
(override with ``base_url`` / ``--base-url`` or the ``I2I_DATASETS_URL`` environment variable).

``facades`` and ``maps`` exist in both collections: the bare name picks the paired
pix2pix version (folder ``NAME``), ``cyclegan/NAME`` the unpaired one (folder
``NAME_cyclegan``); ``pix2pix/NAME`` is accepted too.  Cityscapes cannot be
redistributed and is refused with a pointer to its website.

A download goes to ``ROOT/.NAME.*.part``, is checked (length announced by the server,
archive checksums, member paths, expected folders), extracted into a hidden
temporary folder under ``ROOT`` and renamed into place; an existing dataset
folder is replaced only with ``force``.
"""
from __future__ import annotations

import difflib
import http.client
import os
import shutil
import stat
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from ..errors import DataError
from ..utils import replace_folder
from .io import list_images

DEFAULT_BASE_URL = "http://efrosgans.eecs.berkeley.edu"
BASE_URL_ENV = "I2I_DATASETS_URL"
PIX2PIX = ("facades", "cityscapes", "maps", "edges2shoes", "edges2handbags", "night2day")
CYCLEGAN = ("apple2orange", "summer2winter_yosemite", "horse2zebra", "monet2photo", "cezanne2photo",
            "ukiyoe2photo", "vangogh2photo", "maps", "cityscapes", "facades", "iphone2dslr_flower", "ae_photos")
NOT_DOWNLOADABLE = {
    "cityscapes": "Cityscapes may not be redistributed (license): register at https://www.cityscapes-dataset.com, "
                  "download gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip and build the A|B images yourself",
}
CHUNK = 1 << 20
MAX_MEMBERS = 250_000  # the largest dataset (edges2handbags) has about 139,000 files


class DownloadError(DataError):
    """Network failure, truncated or unsafe archive, unexpected layout."""

    exit_code = 1


class BadURLError(DataError):
    """A server address that is not a URL."""

    exit_code = 2


class UnknownDatasetError(DataError):
    """A name that is not a downloadable dataset."""

    exit_code = 2


@dataclass(frozen=True)
class DatasetSpec:
    name: str  #: archive name on the server
    source: str  #: pix2pix or cyclegan
    folder: str  #: folder created under the download root

    @property
    def archive(self) -> str:
        return self.name + (".tar.gz" if self.source == "pix2pix" else ".zip")

    @property
    def required(self) -> tuple[str, ...]:
        """Sub-folders that must hold images (ae_photos is a loose set of test photos)."""
        if self.source == "pix2pix":
            return ("train",)
        return () if self.name == "ae_photos" else ("trainA", "trainB", "testA", "testB")

    @property
    def kind(self) -> str:
        return {"pix2pix": "aligned", "cyclegan": "unpaired"}[self.source] if self.required else "single"

    def url(self, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/{self.source}/datasets/{self.archive}"


def known_names() -> list[str]:
    """Every accepted name: bare names and ``source/name`` forms of shared ones."""
    shared = set(PIX2PIX) & set(CYCLEGAN)
    names = set(PIX2PIX) | set(CYCLEGAN) | {f"{s}/{n}" for n in shared for s in ("pix2pix", "cyclegan")}
    return sorted(n for n in names if n.split("/")[-1] not in NOT_DOWNLOADABLE)


def resolve(name: str) -> DatasetSpec:
    """The dataset behind ``name`` (``NAME``, ``pix2pix/NAME`` or ``cyclegan/NAME``)."""
    source, _, bare = name.rpartition("/")
    if bare in NOT_DOWNLOADABLE and source in ("", "pix2pix", "cyclegan"):
        raise UnknownDatasetError(f"{name}: cannot be downloaded; {NOT_DOWNLOADABLE[bare]}")
    if name not in known_names():
        close = difflib.get_close_matches(name, known_names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UnknownDatasetError(f"unknown dataset {name!r}{hint}; known: {', '.join(known_names())}")
    if not source:
        source = "pix2pix" if bare in PIX2PIX else "cyclegan"
    shared = bare in PIX2PIX and bare in CYCLEGAN
    return DatasetSpec(bare, source, f"{bare}_cyclegan" if shared and source == "cyclegan" else bare)


def download_command(folder: str | Path) -> str | None:
    """The command that downloads a dataset into ``folder``, or None if no dataset unpacks to a folder of that name."""
    import shlex

    folder = Path(folder)
    name = next((n for n in known_names() if resolve(n).folder == folder.name), None)
    if name is None:
        return None
    root = "" if folder.parent == Path("datasets") else f" --root {shlex.quote(str(folder.parent))}"
    return f"i2i-download {name}{root}"


# --------------------------------------------------------------------------- fetching
def fetch(url: str, dest: Path, progress: bool = True, timeout: float = 60.0, desc: str = "") -> int:
    """Stream ``url`` into ``dest`` with a progress bar; return the byte count."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(dest, "wb") as out:
            total = resp.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            done = 0
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc or None,
                      disable=not progress, leave=True) as bar:
                while chunk := resp.read(CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"download failed: {url}: HTTP {exc.code} {exc.reason}") from None
    except http.client.IncompleteRead:
        raise DownloadError(f"download truncated: {url}: the connection closed before the announced length") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DownloadError(f"download failed: {url}: {reason}") from None
    if total is not None and done != total:
        raise DownloadError(f"download truncated: {url}: got {done} of {total} bytes")
    return done


# --------------------------------------------------------------------------- archives
def _unsafe(member: str) -> bool:
    parts = PurePosixPath(member.replace("\\", "/")).parts
    return member.startswith(("/", "\\")) or (len(member) > 1 and member[1] == ":") or ".." in parts


def _tar_members(tf: tarfile.TarFile, label: str) -> list[tarfile.TarInfo]:
    """The members of ``tf``, read one header at a time and refused past :data:`MAX_MEMBERS`, so that a small
    archive of millions of empty entries does not fill the memory."""
    members = []
    while (member := tf.next()) is not None:
        if len(members) == MAX_MEMBERS:
            raise DownloadError(f"unsafe archive from {label}: more than {MAX_MEMBERS} members")
        members.append(member)
    return members


def safe_extract(archive: Path, dest: Path, label: str) -> None:
    """Check integrity and member paths of a .tar.gz/.zip, then extract into ``dest``."""
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                bad = next((n for n in zf.namelist() if _unsafe(n)), None)
                if bad is not None:
                    raise DownloadError(f"unsafe archive from {label}: member {bad!r} escapes the target folder")
                link = next((i.filename for i in zf.infolist() if stat.S_ISLNK(i.external_attr >> 16)), None)
                if link is not None:
                    raise DownloadError(f"unsafe archive from {label}: member {link!r} is a link")
                if zf.testzip() is not None:
                    raise DownloadError(f"corrupt archive from {label}: checksum mismatch")
                zf.extractall(dest)
            return
        if not tarfile.is_tarfile(archive):
            raise DownloadError(f"corrupt archive from {label}: neither a zip nor a tar archive (cut short?)")
        with tarfile.open(archive, "r:*") as tf:
            members = _tar_members(tf, label)  # reads the whole stream: gzip checksum verified
            for m in members:
                if _unsafe(m.name) or not (m.isfile() or m.isdir()):
                    raise DownloadError(f"unsafe archive from {label}: member {m.name!r} "
                                        f"{'is a link or device' if not _unsafe(m.name) else 'escapes the target folder'}")
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tf.extractall(dest, members=members, **extra)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise DownloadError(f"corrupt archive from {label}: {exc}") from None


def _dataset_dir(extracted: Path) -> Path:
    """The folder inside an extracted archive that holds the dataset (its single top folder)."""
    entries = [p for p in extracted.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else extracted


def check_layout(folder: Path, spec: DatasetSpec, label: str) -> None:
    missing = [d for d in spec.required if not (folder / d).is_dir() or not list_images(folder / d)]
    if missing or not list_images(folder):
        found = ", ".join(sorted(p.name for p in folder.iterdir())) or "nothing"
        raise DownloadError(f"unexpected layout in {label}: missing {', '.join(m + '/' for m in missing) or 'images'}"
                            f" (found: {found})")


# --------------------------------------------------------------------------- main entry
def download(name: str, root: str | Path = "datasets", force: bool = False, base_url: str | None = None,
             progress: bool = True) -> Path:
    """Download and install dataset ``name`` as ``root/<folder>``; return that folder."""
    spec = resolve(name)
    root = Path(root)
    target = root / spec.folder
    if target.exists() and not force:
        raise DownloadError(f"{target} already exists; use --force to replace it")
    url = spec.url(base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL)
    try:
        urllib.request.Request(url)
    except ValueError as exc:  # no scheme, a bad IPv6 host...
        raise BadURLError(f"{url}: not a URL i2i can download from ({exc}); give --base-url http(s)://HOST[/PATH] "
                          f"(or ${BASE_URL_ENV})") from None
    root.mkdir(parents=True, exist_ok=True)
    fd, part = tempfile.mkstemp(prefix=f".{spec.folder}.", suffix=".part", dir=root)
    os.close(fd)
    work = Path(tempfile.mkdtemp(prefix=f".{spec.folder}.", suffix=".extract", dir=root))
    try:
        fetch(url, Path(part), progress=progress, desc=spec.archive)
        safe_extract(Path(part), work, url)
        found = _dataset_dir(work)
        check_layout(found, spec, url)
        replace_folder(found, target)
    finally:
        Path(part).unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)
    return target
