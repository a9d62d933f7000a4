"""Dataset download against a local HTTP server on 127.0.0.1 serving archives built here."""
import functools
import http.server
import io
import socket
import subprocess
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from i2i.cli.download import main
from i2i.data.download import BASE_URL_ENV, DownloadError, UnknownDatasetError, download, fetch, known_names, resolve
from i2i.data.io import write_image

REPO = Path(__file__).resolve().parents[1]


def _png_bytes(tmp_path):
    path = tmp_path / "img.png"
    write_image(path, np.full((4, 8, 3), 90, np.uint8))
    return path.read_bytes()


def _tar(path, members):
    """Write a .tar.gz of {name: bytes} (a value None adds a symlink to /etc/passwd)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))


def _zip(path, members):
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        if self.path.endswith("short.tar.gz"):  # announce more bytes than sent
            self.send_response(200)
            self.send_header("Content-Length", "5000")
            self.end_headers()
            self.wfile.write(b"\x1f\x8b" + b"\0" * 100)
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    """(base URL, folder served) of a server running in a thread."""
    served = tmp_path / "www"
    served.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", served
    httpd.shutdown()
    httpd.server_close()


def _no_leftovers(root):
    return [p.name for p in root.iterdir() if p.name.startswith(".")] == []


def test_names_and_urls():
    assert resolve("facades").url("http://h") == "http://h/pix2pix/datasets/facades.tar.gz"
    spec = resolve("cyclegan/facades")
    assert spec.url("http://h/") == "http://h/cyclegan/datasets/facades.zip" and spec.folder == "facades_cyclegan"
    assert resolve("horse2zebra").url("http://h") == "http://h/cyclegan/datasets/horse2zebra.zip"
    assert resolve("pix2pix/maps").folder == "maps" and resolve("edges2shoes").source == "pix2pix"
    assert "cityscapes" not in known_names() and "ae_photos" in known_names()


def test_download_pix2pix_success_with_progress(tmp_path, server, capsys):
    base, served = server
    png = _png_bytes(tmp_path)
    _tar(served / "pix2pix" / "datasets" / "facades.tar.gz",
         {"facades/train/1.jpg": png, "facades/train/2.jpg": png, "facades/val/3.jpg": png})
    root = tmp_path / "datasets"
    target = download("facades", root, base_url=base)
    assert target == root / "facades"
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*.jpg")) == [
        "train/1.jpg", "train/2.jpg", "val/3.jpg"]
    assert (target / "train" / "1.jpg").read_bytes() == png
    assert _no_leftovers(root)
    err = capsys.readouterr().err
    assert "facades.tar.gz" in err and "100%" in err


def test_download_cyclegan_zip_via_env_and_overwrite_rules(tmp_path, server, monkeypatch):
    base, served = server
    png = _png_bytes(tmp_path)
    members = {f"maps/{d}/x.png": png for d in ("trainA", "trainB", "testA", "testB")}
    _zip(served / "cyclegan" / "datasets" / "maps.zip", members)
    monkeypatch.setenv(BASE_URL_ENV, base)
    root = tmp_path / "ds"
    target = download("cyclegan/maps", root, progress=False)
    assert target == root / "maps_cyclegan"
    assert sorted(p.name for p in target.iterdir()) == ["testA", "testB", "trainA", "trainB"]
    (target / "mine.txt").write_text("keep")
    with pytest.raises(DownloadError, match="already exists.*--force"):
        download("cyclegan/maps", root, progress=False)
    assert (target / "mine.txt").read_text() == "keep"
    download("cyclegan/maps", root, force=True, progress=False)
    assert not (target / "mine.txt").exists() and (target / "trainA" / "x.png").is_file()
    assert _no_leftovers(root)


@pytest.mark.parametrize("members,fmt,match", [
    ({"facades/train/1.jpg": b"x", "../evil.jpg": b"x"}, "tar", "unsafe.*evil"),
    ({"facades/train/1.jpg": b"x", "/tmp/evil.jpg": b"x"}, "zip", "unsafe.*evil"),
    ({"facades/train/1.jpg": b"x", "facades/train/link.jpg": None}, "tar", "unsafe.*link"),
    ({"facades/other/1.jpg": b"x"}, "tar", "missing train/"),
])
def test_bad_archives_rejected_and_nothing_installed(tmp_path, server, members, fmt, match):
    base, served = server
    archive = served / "pix2pix" / "datasets" / "facades.tar.gz"
    if fmt == "tar":
        _tar(archive, {k: (_png_bytes(tmp_path) if v == b"x" else v) for k, v in members.items()})
    else:  # a zip served under the tar name: detected by content
        _zip(archive, {k: _png_bytes(tmp_path) for k in members})
    root = tmp_path / "out" / "datasets"
    with pytest.raises(DownloadError, match=match):
        download("facades", root, base_url=base, progress=False)
    assert not (root / "facades").exists() and not (tmp_path / "out" / "evil.jpg").exists()
    assert _no_leftovers(root)


def test_corrupt_truncated_and_missing_downloads(tmp_path, server):
    base, served = server
    (served / "pix2pix" / "datasets").mkdir(parents=True)
    (served / "pix2pix" / "datasets" / "facades.tar.gz").write_bytes(b"\x1f\x8b garbage" * 20)
    root = tmp_path / "d"
    with pytest.raises(DownloadError, match="corrupt archive"):
        download("facades", root, base_url=base, progress=False)
    with pytest.raises(DownloadError, match="truncated"):  # the handler announces 5000 bytes, sends 102
        fetch(base + "/short.tar.gz", tmp_path / "short.part", progress=False)
    with pytest.raises(DownloadError, match="HTTP 404"):
        download("night2day", root, base_url=base, progress=False)
    assert not (root / "facades").exists() and _no_leftovers(root)


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_exit_codes_and_one_line_errors(tmp_path, capsys):
    assert main(["facadess", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "did you mean 'facades'" in err and "horse2zebra" in err
    assert main(["cityscapes", "--root", str(tmp_path)]) == 2
    assert "license" in capsys.readouterr().err
    with pytest.raises(UnknownDatasetError):
        resolve("cyclegan/edges2shoes")
    url = f"http://127.0.0.1:{_closed_port()}"
    assert main(["horse2zebra", "--root", str(tmp_path), "--base-url", url, "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("error: download failed") and url in err


def test_tool_script_is_wired(tmp_path, server):
    base, served = server
    _tar(served / "pix2pix" / "datasets" / "maps.tar.gz", {"maps/train/1.png": _png_bytes(tmp_path)})
    cmd = [sys.executable, str(REPO / "tools" / "download_dataset.py"), "maps", "--root", str(tmp_path / "r"),
           "--base-url", base]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "r" / "maps" / "train" / "1.png").is_file() and "aligned" in done.stdout


def test_an_archive_of_too_many_members_is_refused_unread(tmp_path, server, monkeypatch):
    import i2i.data.download as download_module

    base, served = server
    monkeypatch.setattr(download_module, "MAX_MEMBERS", 5)
    _tar(served / "pix2pix" / "datasets" / "facades.tar.gz",
         {f"facades/train/{i}.png": _png_bytes(tmp_path) for i in range(6)})
    root = tmp_path / "d"
    with pytest.raises(DownloadError, match="more than 5 members"):
        download("facades", root, base_url=base, progress=False)
    assert not (root / "facades").exists() and _no_leftovers(root)
    _tar(served / "pix2pix" / "datasets" / "facades.tar.gz",
         {f"facades/train/{i}.png": _png_bytes(tmp_path) for i in range(5)})
    assert len(list(download("facades", root, base_url=base, progress=False).rglob("*.png"))) == 5


def test_a_cut_short_zip_is_one_line_and_a_zip_link_is_refused(tmp_path, server, capsys):
    base, served = server
    archive = served / "cyclegan" / "datasets" / "horse2zebra.zip"
    _zip(archive, {f"horse2zebra/{d}/1.png": _png_bytes(tmp_path) for d in ("trainA", "trainB", "testA", "testB")})
    archive.write_bytes(archive.read_bytes()[:-30])  # the end of the central directory is lost
    root = tmp_path / "d"
    assert main(["horse2zebra", "--root", str(root), "--base-url", base, "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "corrupt archive" in err and "neither a zip nor a tar archive" in err
    with zipfile.ZipFile(archive, "w") as zf:
        for d in ("trainA", "trainB", "testA", "testB"):
            zf.writestr(f"horse2zebra/{d}/1.png", _png_bytes(tmp_path))
        link = zipfile.ZipInfo("horse2zebra/trainA/2.png")
        link.external_attr = 0o120777 << 16  # a symbolic link, as zip -y stores one
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(DownloadError, match="'horse2zebra/trainA/2.png' is a link"):
        download("horse2zebra", root, base_url=base, progress=False)
    assert not (root / "horse2zebra").exists() and _no_leftovers(root)
