"""Dataset kinds on tiny images written to tmp_path, the builtin dataset, and the loader."""
import numpy as np
import pytest
import torch

from i2i.config import DataConfig
from i2i.data import build_dataset, build_loader
from i2i.data.builtin import SHAPES_PALETTE, BuiltinSet
from i2i.data.io import write_image
from i2i.errors import DataError
from i2i.registry import DATASETS

SIZE = 16


def _cfg(root, kind, **kw):
    base = dict(kind=kind, root=str(root), preprocess="none", load_size=SIZE, crop_size=SIZE, no_flip=True,
                num_workers=0)
    base.update(kw)
    return DataConfig(**base)


def _solid(value, c=3, h=SIZE, w=SIZE):
    return np.full((h, w, c), value, np.uint8)


def _val(t):
    """Pixel value (0..255) of a constant tensor in [-1, 1]."""
    return round((float(t.mean()) + 1) * 127.5)


def _aligned_root(tmp_path, n=3):
    for i in range(n):
        ab = np.concatenate([_solid(10 * i + 10), _solid(10 * i + 100)], axis=1)
        write_image(tmp_path / "train" / f"{i:03d}.png", ab)
    return tmp_path


def test_kinds_are_registered():
    assert {"aligned", "paired", "unpaired", "single"} <= set(DATASETS.names())


def test_aligned_halves_and_direction(tmp_path):
    root = _aligned_root(tmp_path)
    ds = build_dataset(_cfg(root, "aligned"))
    assert len(ds) == 3
    item = ds[1]
    assert set(item) == {"A", "B", "A_path", "B_path"}
    assert item["A"].shape == item["B"].shape == (3, SIZE, SIZE) and item["A"].dtype == torch.float32
    assert -1 <= float(item["A"].min()) and float(item["A"].max()) <= 1
    assert (_val(item["A"]), _val(item["B"])) == (20, 110)
    assert item["A_path"].endswith("001.png")
    swapped = build_dataset(_cfg(root, "aligned", direction="BtoA", in_channels=1))[1]
    assert swapped["A"].shape == (1, SIZE, SIZE) and swapped["B"].shape == (3, SIZE, SIZE)
    assert (_val(swapped["A"]), _val(swapped["B"])) == (110, 20)
    assert len(build_dataset(_cfg(root, "aligned", max_items=2))) == 2


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(DataError, match="not found.*train"):
        build_dataset(_cfg(tmp_path, "aligned"))
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "readme.txt").write_text("x")
    with pytest.raises(DataError, match="no images in .*train"):
        build_dataset(_cfg(tmp_path, "aligned"))
    with pytest.raises(DataError, match="trainA"):
        build_dataset(_cfg(tmp_path, "unpaired"))


def test_paired_matches_by_stem_across_extensions(tmp_path):
    for i, stem in enumerate(["x1", "x2", "x3"]):
        write_image(tmp_path / "trainA" / f"{stem}.png", _solid(10 + i))
        write_image(tmp_path / "trainB" / f"{stem}.{'bmp' if i == 1 else 'png'}", _solid(100 + i))
    ds = build_dataset(_cfg(tmp_path, "paired", out_channels=1))
    assert len(ds) == 3
    for i in range(3):
        item = ds[i]
        assert (_val(item["A"]), _val(item["B"])) == (10 + i, 100 + i)
        assert item["B"].shape == (1, SIZE, SIZE)
        assert item["A_path"].endswith(f"x{i + 1}.png") and f"x{i + 1}." in item["B_path"]
    back = build_dataset(_cfg(tmp_path, "paired", direction="BtoA"))[2]
    assert (_val(back["A"]), _val(back["B"])) == (102, 12) and "trainB" in back["A_path"]


def test_paired_regex_maps_many_to_one(tmp_path):
    for scene in (1400, 1401):
        write_image(tmp_path / "valB" / f"{scene}.png", _solid(scene - 1300))
        for level in (1, 3):
            write_image(tmp_path / "valA" / f"{scene}_{level}.png", _solid(level))
    ds = build_dataset(_cfg(tmp_path, "paired", phase="val", pair_regex=r"^(\d+)_"))
    got = sorted((_val(ds[i]["A"]), _val(ds[i]["B"])) for i in range(len(ds)))
    assert got == [(1, 100), (1, 101), (3, 100), (3, 101)]


def test_paired_missing_partner_lists_stems(tmp_path):
    for stem in ["a", "b", "lonely1", "lonely2"]:
        write_image(tmp_path / "trainA" / f"{stem}.png", _solid(1))
    for stem in ["a", "b"]:
        write_image(tmp_path / "trainB" / f"{stem}.png", _solid(1))
    with pytest.raises(DataError) as info:
        build_dataset(_cfg(tmp_path, "paired"))
    msg = str(info.value)
    assert "lonely1" in msg and "lonely2" in msg and "2 file(s)" in msg and "\n" not in msg
    write_image(tmp_path / "trainB" / "orphan.png", _solid(1))
    for stem in ["lonely1", "lonely2"]:
        (tmp_path / "trainA" / f"{stem}.png").unlink()
    with pytest.raises(DataError, match="orphan"):
        build_dataset(_cfg(tmp_path, "paired"))
    with pytest.raises(DataError, match="no partner.*zzz"):  # regex that matches nothing
        write_image(tmp_path / "trainA" / "zzz.png", _solid(1))
        build_dataset(_cfg(tmp_path, "paired", pair_regex=r"^(\d+)$"))


def _unpaired_root(tmp_path, na=2, nb=5):
    for i in range(na):
        write_image(tmp_path / "trainA" / f"a{i}.png", _solid(i))
    for j in range(nb):
        write_image(tmp_path / "trainB" / f"b{j}.png", _solid(100 + j))
    return tmp_path


def test_unpaired_length_cycling_and_eval_b(tmp_path):
    root = _unpaired_root(tmp_path)
    ds = build_dataset(_cfg(root, "unpaired"), train=False)
    assert len(ds) == 5
    assert [(_val(ds[i]["A"]), _val(ds[i]["B"])) for i in range(5)] == [(i % 2, 100 + i) for i in range(5)]
    swapped = build_dataset(_cfg(root, "unpaired", direction="BtoA"), train=False)
    assert _val(swapped[3]["A"]) == 103 and _val(swapped[3]["B"]) == 1


def test_unpaired_random_b_in_training_is_seeded(tmp_path):
    ds = build_dataset(_cfg(_unpaired_root(tmp_path), "unpaired"), train=True)
    torch.manual_seed(0)
    draws = [_val(ds[0]["B"]) for _ in range(40)]
    assert set(draws) == {100, 101, 102, 103, 104}  # every B gets drawn for the same A
    torch.manual_seed(0)
    assert [_val(ds[0]["B"]) for _ in range(40)] == draws


def test_single_uses_phase_folder_or_root_with_rel_path(tmp_path):
    write_image(tmp_path / "x" / "sub" / "p.png", _solid(7))
    write_image(tmp_path / "x" / "q.jpg", _solid(9))
    ds = build_dataset(_cfg(tmp_path / "x", "single", phase="test"))
    assert [ds[i]["rel_path"] for i in range(len(ds))] == ["q.jpg", "sub/p.png"]
    item = ds[1]
    assert set(item) == {"A", "A_path", "rel_path"} and _val(item["A"]) == 7
    write_image(tmp_path / "x" / "test" / "r.png", _solid(3))
    ds = build_dataset(_cfg(tmp_path / "x", "single", phase="test", in_channels=1))
    assert len(ds) == 1 and ds[0]["rel_path"] == "r.png" and ds[0]["A"].shape == (1, SIZE, SIZE)


def test_too_small_image_error_names_file(tmp_path):
    write_image(tmp_path / "trainA" / "small.png", _solid(1, h=8, w=8))
    write_image(tmp_path / "trainB" / "small.png", _solid(1, h=8, w=8))
    ds = build_dataset(_cfg(tmp_path, "paired", preprocess="crop", crop_size=12))
    with pytest.raises(DataError, match="small.png.*smaller than crop_size 12"):
        ds[0]


# --------------------------------------------------------------------------- builtin
def test_builtin_deterministic_and_paired():
    bs = BuiltinSet.from_root("builtin:shapes", "train", 48)
    a1, b1 = bs.pair(3)
    a2, b2 = bs.pair(3)
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(b1, b2)
    assert a1.shape == b1.shape == (48, 48, 3) and a1.dtype == b1.dtype == np.uint8
    assert not np.array_equal(a1, bs.pair(4)[0])
    assert not np.array_equal(a1, BuiltinSet.from_root("builtin:shapes", "val", 48).pair(3)[0])
    palette = {tuple(c) for c in SHAPES_PALETTE.tolist()}
    assert {tuple(c) for c in a1.reshape(-1, 3).tolist()} <= palette  # flat label colours only
    background = (a1 == 0).all(axis=2)
    assert 0 < background.sum() < background.size
    # the photo is textured where the label is flat: more distinct colours than the label map
    assert len(np.unique(b1.reshape(-1, 3), axis=0)) > 50
    # same layout: the photo differs between background and shapes
    assert abs(b1[background].mean() - b1[~background].mean()) > 5
    assert (len(bs), len(BuiltinSet.from_root("builtin:shapes", "test", 48))) == (64, 16)


@pytest.mark.parametrize("kind", ["aligned", "paired", "unpaired", "single"])
def test_builtin_all_kinds(kind):
    cfg = DataConfig(kind=kind, root="builtin:shapes", preprocess="resize_and_crop", load_size=40,
                     crop_size=32, num_workers=0)
    ds = build_dataset(cfg, train=False, phase="val")
    assert len(ds) == 16
    item = ds[2]
    assert item["A"].shape == (3, 32, 32) and -1 <= float(item["A"].min()) <= float(item["A"].max()) <= 1
    assert item["A_path"] == "builtin:shapes/val/A/0002.png"
    if kind == "single":
        assert item["rel_path"] == "0002.png" and "B" not in item
    else:
        assert item["B"].shape == (3, 32, 32)
    torch.testing.assert_close(build_dataset(cfg, train=False, phase="val")[2]["A"], item["A"])


def test_builtin_unknown_name_and_phase():
    with pytest.raises(DataError, match="unknown builtin.*builtin:shapes"):
        build_dataset(DataConfig(kind="aligned", root="builtin:nope"))
    with pytest.raises(DataError, match="phase 'dev'.*train, val, test"):
        build_dataset(DataConfig(kind="aligned", root="builtin:shapes", phase="dev"))


# --------------------------------------------------------------------------- loader
def test_loader_batches_and_seeded_order():
    cfg = DataConfig(kind="aligned", root="builtin:shapes", load_size=20, crop_size=16, batch_size=5,
                     num_workers=0, max_items=12)
    ds = build_dataset(cfg)
    loader = build_loader(ds, cfg, train=True, seed=3)
    batches = list(loader)
    assert [b["A"].shape[0] for b in batches] == [5, 5, 2]  # drop_last=False
    order = [p for b in batches for p in b["A_path"]]
    assert sorted(order) == sorted(ds[i]["A_path"] for i in range(12)) and order != sorted(order)
    again = [p for b in build_loader(ds, cfg, train=True, seed=3) for p in b["A_path"]]
    assert again == order
    plain = [p for b in build_loader(ds, cfg, train=False) for p in b["A_path"]]
    assert plain == sorted(plain)


def test_loader_workers_reproducible_from_seed():
    cfg = DataConfig(kind="aligned", root="builtin:shapes", load_size=24, crop_size=16, batch_size=4,
                     num_workers=2, max_items=8)
    ds = build_dataset(cfg)

    def run(seed):
        loader = build_loader(ds, cfg, train=True, seed=seed)
        assert loader.persistent_workers
        return torch.cat([b["A"] for b in loader])

    first = run(7)
    torch.testing.assert_close(run(7), first)
    assert not torch.equal(run(8), first)


def test_cache_reads_each_file_once_within_its_budget_and_hands_out_copies(tmp_path):
    from i2i.data.datasets import CachedReader

    calls = []

    def read(path, channels=3):
        calls.append(str(path))
        return np.full((4, 5, channels), len(calls), np.uint8)  # 60 bytes each

    cached = CachedReader(read, budget=130)  # room for two images
    for _ in range(3):
        for name in ("a.png", "b.png", "c.png"):
            cached(tmp_path / name)
    assert calls.count(str(tmp_path / "a.png")) == 1 and calls.count(str(tmp_path / "b.png")) == 1
    assert calls.count(str(tmp_path / "c.png")) == 3  # over the budget: read from disk every time
    assert cached.held == 120
    first = cached(tmp_path / "a.png")
    first[:] = 0  # a transform writing in place does not reach the cache
    assert cached(tmp_path / "a.png").min() == 1


def test_cache_mb_gives_the_same_items(tmp_path):
    from i2i.config import DataConfig
    from i2i.data import build_dataset
    from i2i.data.io import write_image

    rng = np.random.default_rng(0)
    for i in range(3):
        write_image(tmp_path / "train" / f"{i}.png", rng.integers(0, 255, (8, 16, 3), dtype=np.uint8))
    kw = dict(kind="aligned", root=str(tmp_path), preprocess="none", no_flip=True, num_workers=0)
    plain, cached = build_dataset(DataConfig(**kw)), build_dataset(DataConfig(cache_mb=1, **kw))
    for _ in range(2):
        for i in range(3):
            assert torch.equal(plain[i]["A"], cached[i]["A"]) and torch.equal(plain[i]["B"], cached[i]["B"])
