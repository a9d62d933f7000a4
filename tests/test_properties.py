"""Property-based tests: whatever the input, the config loader and the image reader either
succeed or raise their one-line error, never another exception."""
import io
import math
import random
import struct
import zlib

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from i2i.config import Config, parse_overrides, read_yaml
from i2i.configure import build_config
from i2i.data.io import read_image
from i2i.errors import ConfigError, DataError

BOUNDED = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), database=None)

# ---------------------------------------------------------------------------------- configs
SECTIONS = {
    "model": ["name", "lambda_l1", "pool_size", "test_batch_stats", "lambda_cycle", "x"],
    "nets": ["G", "D", "G_A", "generator"],
    "losses": ["gan", "penalty", "n_critic", "x"],
    "optim": ["G", "D", "default"],
    "data": ["root", "kind", "load_size", "crop_size", "batch_size", "ab_dirs", "max_pixels", "preprocess", "x"],
    "train": ["epochs", "max_steps", "seed", "amp", "ema", "max_bad_steps", "checkpoint_every", "name", "x"],
    "log": ["every", "sample_every", "tensorboard"],
    "eval": ["every", "root", "metrics", "best"],
}
LEAF_KEYS = ["name", "type", "lr", "betas", "ngf", "num_downs", "norm", "weight", "every", "decay", "half", "x"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["pix2pix", "cyclegan", "unet", "resnet", "hinge", "adam", "builtin:shapes",
                                           "r1", "batch", "1e-4", "-1", "nan", ".inf", "{phase}A", "on"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.one_of(st.sampled_from(LEAF_KEYS), st.text(max_size=5), st.integers()),
                                            inner, max_size=3)),
    max_leaves=8,
)


@st.composite
def config_trees(draw):
    tree = {}
    for section in draw(st.lists(st.sampled_from(sorted(SECTIONS)), unique=True, max_size=5)):
        if draw(st.booleans()):
            tree[section] = draw(values)
        else:
            keys = draw(st.lists(st.sampled_from(SECTIONS[section]), unique=True, max_size=4))
            tree[section] = {k: draw(values) for k in keys}
    if draw(st.booleans()):
        tree.setdefault("data", {}) if isinstance(tree.get("data"), dict) else None
        if isinstance(tree.get("data"), dict):
            tree["data"].setdefault("root", "builtin:shapes")
    if draw(st.booleans()):
        tree[draw(st.text(max_size=6))] = draw(values)
    tree.pop("imports", None)  # would import modules named by random text
    return tree


set_keys = st.one_of(
    st.builds(lambda s, k: f"{s}.{k}", st.sampled_from(sorted(SECTIONS)), st.sampled_from(sum(SECTIONS.values(), []))),
    st.builds(lambda s, a, b: f"{s}.{a}.{b}", st.sampled_from(["nets", "optim", "losses", "train"]),
              st.sampled_from(["G", "D", "gan", "ema", "penalty"]), st.sampled_from(LEAF_KEYS)),
    st.text(max_size=10),
)
set_strings = st.one_of(
    st.builds(lambda k, v: f"{k}={v}", set_keys, st.one_of(st.text(max_size=12), scalars.map(str))),
    st.text(max_size=20),
).filter(lambda s: not s.strip().startswith("imports"))


def config_or_error(tree, sets):
    try:
        cfg = build_config(tree, sets, check_paths=False)
    except ConfigError as exc:
        assert "\n" not in str(exc), str(exc)
        return None
    assert isinstance(cfg, Config)
    for section in ("data", "train", "log", "eval"):  # every float setting is a number
        for name, value in vars(getattr(cfg, section)).items():
            if isinstance(value, float):
                assert math.isfinite(value), (section, name, value)
    return cfg


@BOUNDED
@given(tree=config_trees(), sets=st.lists(set_strings, max_size=3))
@example(tree={"data": {}, "model": {"name": []}}, sets=[])  # found by this test
@example(tree={"optim": {"default": {}, "G": 1}}, sets=[])
@example(tree={}, sets=["optim.G.lr=inf", "model=[1]"])
@example(tree={"losses": {"gan": {0: None}}}, sets=[])  # found by this test: an int key as a keyword argument
@example(tree={"nets": {"\n": None}}, sets=[])  # a key with a line break in the message
def test_config_trees_and_set_strings_give_a_config_or_a_config_error(tree, sets):
    config_or_error(tree, sets)


@BOUNDED
@given(sets=st.lists(set_strings, max_size=4))
@example(sets=["train.name=2024-13-01"])  # a date that is none: ValueError from the YAML reader
def test_set_strings_on_a_good_config_give_a_config_or_a_config_error(sets):
    base = {"model": "pix2pix", "data": {"root": "builtin:shapes"}}
    config_or_error(base, sets)
    try:
        parse_overrides(sets)
    except ConfigError:
        pass


@BOUNDED
@given(text=st.one_of(st.text(max_size=200), values.map(lambda v: yaml.safe_dump(v, allow_unicode=True)),
                      config_trees().map(lambda t: yaml.safe_dump(t, allow_unicode=True))))
@example(text="0:\nnets:\n ? '\n\n'")  # found by this test: the key '\n' in the message
@example(text="a: 2024-13-01")  # a date that is none: ValueError from the YAML reader
def test_yaml_files_give_a_tree_or_a_config_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("yaml") / "c.yaml"
    path.write_text(text)
    try:
        tree = read_yaml(path)
    except ConfigError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(tree, dict)
    tree.pop("imports", None)
    config_or_error(tree, [])


# ---------------------------------------------------------------------------------- images
LIMIT = 40_000  # pixels


def _seeds() -> dict[str, bytes]:
    import cv2

    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
    out = {}
    for ext in (".png", ".jpg", ".bmp", ".tif", ".webp"):
        ok, data = cv2.imencode(ext, img)
        out[ext] = data.tobytes()
    return out


SEEDS = _seeds()


def _png(width: int, height: int, payload: bytes) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(payload)) + chunk(b"IEND", b""))


@st.composite
def image_bytes(draw):
    kind = draw(st.sampled_from(["random", "mutated", "truncated", "forged png"]))
    if kind == "random":
        return draw(st.sampled_from(list(SEEDS))), draw(st.binary(max_size=600))
    ext = draw(st.sampled_from(list(SEEDS)))
    data = bytearray(SEEDS[ext])
    if kind == "truncated":
        return ext, bytes(data[: draw(st.integers(0, len(data)))])
    if kind == "mutated":
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, min(len(data) - 1, 300)))  # mostly the header
            data[i] = draw(st.integers(0, 255))
        return ext, bytes(data)
    w = draw(st.one_of(st.integers(0, 300), st.integers(0, 2**31 - 1)))
    h = draw(st.one_of(st.integers(0, 300), st.integers(0, 2**31 - 1)))
    return ".png", _png(w, h, b"\0" * draw(st.integers(0, 4000)))


def _peak_mb() -> float | None:
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM")) / 1024
    except (OSError, StopIteration):
        return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def test_any_bytes_give_an_image_within_the_limit_or_a_data_error(tmp_path):
    measured = _reset_peak()
    before = _peak_mb()
    path_of = {}

    png = bytearray(SEEDS[".png"])
    png[33:37] = (0xE7000000 + int.from_bytes(png[33:37], "big")).to_bytes(4, "big")  # IDAT length: 3.8 GB

    @BOUNDED
    @given(sample=image_bytes(), channels=st.sampled_from([1, 3]))
    @example(sample=(".png", bytes(png)), channels=3)  # found by this test: OpenCV allocated the chunk's length
    def check(sample, channels):
        ext, data = sample
        path = path_of.setdefault(ext, tmp_path / f"x{ext}")
        path.write_bytes(data)
        try:
            img = read_image(path, channels=channels, max_pixels=LIMIT)
        except DataError as exc:
            assert "\n" not in str(exc)
            return
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == channels
        assert 0 < img.shape[0] * img.shape[1] <= LIMIT

    check()
    if measured and before is not None:
        assert _peak_mb() - before < 100  # nothing near a forged 2**31 x 2**31 image was allocated
