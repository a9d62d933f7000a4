"""Pretrained files on first use, served by a local HTTP server: fetched once, checked, nothing partial left."""
import hashlib
import http.server
import socket
import threading

import numpy as np
import pytest
import torch

from i2i.cli.eval import main as eval_main
from i2i.data.io import write_image
from i2i.errors import WeightsError
from i2i.pretrained import INCEPTION, MIRROR_ENV, OFFLINE_ENV, VGG19, PretrainedFile, locate

GOOD = bytes(range(256)) * 40  # 10 KiB
GOOD_SHA = hashlib.sha256(GOOD).hexdigest()


class Server:
    """``http://127.0.0.1:PORT/NAME`` serves ``files[NAME]``; ``cut`` names files sent only in half (the
    connection closed after announcing the whole length); ``requests`` counts every request."""

    def __init__(self) -> None:
        self.files, self.cut, self.requests = {}, set(), []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                outer.requests.append(self.path)
                name = self.path.lstrip("/")
                if name not in outer.files:
                    self.send_error(404)
                    return
                body = outer.files[name]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if name in outer.cut else body)
                if name in outer.cut:
                    self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty torch hub cache, online, no mirror."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch" / "hub"))
    monkeypatch.delenv(OFFLINE_ENV, raising=False)
    return tmp_path / "torch" / "hub" / "checkpoints"


def entry(server, name="tiny-weights.pth", sha=GOOD_SHA, urls=None) -> PretrainedFile:
    return PretrainedFile(title="tiny weights", filename=name, urls=urls or (f"{server.base}/{name}",),
                          sha256=sha, env="I2I_TINY_WEIGHTS")


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/nothing.pth"


def test_a_good_file_is_fetched_once_and_reused(server, cache, capsys):
    server.files["tiny-weights.pth"] = GOOD
    e = entry(server)
    path = locate(e, progress=False)
    assert path == cache / "tiny-weights.pth" and path.read_bytes() == GOOD
    assert server.requests == ["/tiny-weights.pth"]
    assert f"downloading tiny weights from {server.base}/tiny-weights.pth" in capsys.readouterr().err
    assert locate(e) == path and len(server.requests) == 1  # from the cache, checked, no second request
    assert sorted(p.name for p in cache.iterdir()) == ["tiny-weights.pth"]


def test_a_hash_prefix_is_enough_and_the_urls_are_tried_in_order(server, cache):
    server.files["tiny-weights.pth"] = GOOD
    e = entry(server, sha=GOOD_SHA[:8], urls=(closed_port_url(), f"{server.base}/tiny-weights.pth"))
    assert locate(e, progress=False).read_bytes() == GOOD
    with pytest.raises(ValueError, match="8 to 64"):
        entry(server, sha=GOOD_SHA[:7])


def test_the_mirror_variable_replaces_the_urls(server, cache, monkeypatch):
    server.files["tiny-weights.pth"] = GOOD
    monkeypatch.setenv(MIRROR_ENV, server.base + "/")
    assert locate(entry(server, urls=(closed_port_url(),)), progress=False).read_bytes() == GOOD
    assert server.requests == ["/tiny-weights.pth"]


def test_a_wrong_hash_is_refused_and_removed(server, cache):
    bad = GOOD[::-1]
    server.files["tiny-weights.pth"] = bad
    with pytest.raises(WeightsError) as err:
        locate(entry(server), progress=False)
    msg = str(err.value)
    assert "\n" not in msg and f"{server.base}/tiny-weights.pth" in msg
    assert hashlib.sha256(bad).hexdigest() in msg and GOOD_SHA in msg
    assert list(cache.iterdir()) == []


def test_a_connection_closed_mid_file_leaves_nothing(server, cache):
    server.files["tiny-weights.pth"] = GOOD
    server.cut.add("tiny-weights.pth")
    with pytest.raises(WeightsError) as err:
        locate(entry(server), progress=False)
    msg = str(err.value)
    assert "\n" not in msg and "truncated" in msg and f"put tiny-weights.pth (from {server.base}" in msg
    assert list(cache.iterdir()) == []


def test_no_server_is_one_line_saying_what_to_put_where(cache):
    e = PretrainedFile(title="tiny weights", filename="tiny-weights.pth", urls=(closed_port_url(),),
                       sha256=GOOD_SHA, env="I2I_TINY_WEIGHTS")
    with pytest.raises(WeightsError) as err:
        locate(e, progress=False)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("cannot download tiny weights")
    assert f"into {cache}" in msg and "$I2I_TINY_WEIGHTS" in msg
    assert list(cache.iterdir()) == []


def test_offline_never_connects(server, cache, monkeypatch):
    server.files["tiny-weights.pth"] = GOOD
    e = entry(server)
    with pytest.raises(WeightsError, match=f"tiny weights not found and \\${OFFLINE_ENV} is set: put tiny-weights.pth"):
        locate(e, offline=True)
    monkeypatch.setenv(OFFLINE_ENV, "1")
    with pytest.raises(WeightsError, match=str(cache)):
        locate(e)
    assert server.requests == []


def test_a_damaged_cached_copy_is_refused_not_deleted(server, cache):
    server.files["tiny-weights.pth"] = GOOD
    cache.mkdir(parents=True)
    (cache / "tiny-weights.pth").write_bytes(GOOD[:100])
    with pytest.raises(WeightsError, match="tiny-weights.pth: SHA-256 [0-9a-f]{64} is not the expected .*delete it"):
        locate(entry(server))
    assert server.requests == [] and (cache / "tiny-weights.pth").read_bytes() == GOOD[:100]


def test_given_files_come_before_the_cache(server, cache, tmp_path, monkeypatch):
    e = entry(server)
    given, from_env = tmp_path / "given.pth", tmp_path / "env.pth"
    given.write_bytes(b"x")
    from_env.write_bytes(b"y")
    monkeypatch.setenv(e.env, str(from_env))
    assert locate(e, given) == given and locate(e) == from_env
    with pytest.raises(WeightsError, match="absent.pth \\(from --my-option\\) does not exist"):
        locate(e, tmp_path / "absent.pth", source="--my-option")
    assert server.requests == []


def test_the_registry_names_the_published_files():
    assert VGG19.urls == ("https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",)
    for e in (VGG19, INCEPTION):  # the hash prefix torch.hub checks is in the file name
        assert len(e.sha256) == 64 and all(e.sha256[:8] in u.rsplit("/", 1)[1] for u in e.urls)
        assert e.filename == e.urls[0].rsplit("/", 1)[1]


def test_eval_downloads_on_first_use_and_offline_does_not(server, cache, tmp_path, monkeypatch, capsys):
    for folder in ("pred", "target"):
        write_image(tmp_path / folder / "a.png", np.zeros((16, 16, 3), np.uint8))
    server.files[INCEPTION.filename] = b"not the Inception weights"
    monkeypatch.setenv(MIRROR_ENV, server.base)
    monkeypatch.delenv(INCEPTION.env, raising=False)
    args = ["--pred", str(tmp_path / "pred"), "--target", str(tmp_path / "target"), "--metrics", "fid"]
    assert eval_main(args + ["--offline"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"put {INCEPTION.filename}" in err[0] and server.requests == []
    assert eval_main(args) == 1  # online: fetched from the mirror, refused by its hash
    err = capsys.readouterr().err.strip().splitlines()
    assert server.requests == [f"/{INCEPTION.filename}"] and f"{server.base}/{INCEPTION.filename}: SHA-256" in err[-1]
    assert list(cache.iterdir()) == []


def test_the_fetch_command(server, cache, monkeypatch, capsys):
    from i2i.pretrained import main

    assert main(["vgg19", "nope"]) == 2 and "unknown pretrained file 'nope'" in capsys.readouterr().err
    server.files[VGG19.filename] = b"not VGG19"
    monkeypatch.setenv(MIRROR_ENV, server.base)
    assert main(["vgg19"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"error: {server.base}/{VGG19.filename}: SHA-256 ") and list(cache.iterdir()) == []
    monkeypatch.setenv(OFFLINE_ENV, "1")
    assert main([]) == 1 and server.requests == [f"/{VGG19.filename}"]  # the first file missing, offline: no request
    assert f"put {INCEPTION.filename}" in capsys.readouterr().err
