"""RESIDE layout for the paired dataset: <phase>/hazy/SSSS_K.png pairs with <phase>/clear/SSSS.png."""
import numpy as np
import pytest

from i2i.config import DataConfig
from i2i.configure import load_config
from i2i.data import build_dataset
from i2i.data.io import write_image
from i2i.errors import ConfigError, DataError

SIZE = 16
RESIDE = dict(ab_dirs=["{phase}/hazy", "{phase}/clear"], pair_regex=r"^(.*)_\d+$")


def _cfg(root, **kw):
    base = dict(kind="paired", root=str(root), preprocess="none", load_size=SIZE, crop_size=SIZE, no_flip=True,
                num_workers=0)
    base.update(kw)
    return DataConfig(**base)


def _val(t):
    return round((float(t.mean()) + 1) * 127.5)


def _reside(root, phase="train", scenes=(1400, 1401), levels=(1, 2, 10)):
    """clear/SSSS.png filled with SSSS % 100, hazy/SSSS_K.png with 100 + SSSS % 100 + K."""
    for s in scenes:
        write_image(root / phase / "clear" / f"{s}.png", np.full((SIZE, SIZE, 3), s % 100, np.uint8))
        for k in levels:
            write_image(root / phase / "hazy" / f"{s}_{k}.png", np.full((SIZE, SIZE, 3), 100 + s % 100 + k, np.uint8))
    return root


def test_default_folders_are_phase_a_and_b():
    assert DataConfig().ab_dirs == ["{phase}A", "{phase}B"]


def test_reside_pairs_every_haze_level_with_its_clear_image(tmp_path):
    ds = build_dataset(_cfg(_reside(tmp_path), **RESIDE))
    assert len(ds) == 6
    pairs = {(item["A_path"].split("/")[-1], item["B_path"].split("/")[-1]) for item in ds}
    assert pairs == {(f"{s}_{k}.png", f"{s}.png") for s in (1400, 1401) for k in (1, 2, 10)}
    for item in ds:
        s, k = map(int, item["A_path"].split("/")[-1][:-4].split("_"))
        assert (_val(item["A"]), _val(item["B"])) == (100 + s % 100 + k, s % 100)
        assert "/train/hazy/" in item["A_path"] and "/train/clear/" in item["B_path"]


def test_phase_selects_the_split_and_btoa_swaps(tmp_path):
    _reside(tmp_path, "train")
    _reside(tmp_path, "val", scenes=(1426,), levels=(3,))
    ds = build_dataset(_cfg(tmp_path, phase="val", **RESIDE))
    assert len(ds) == 1 and ds[0]["A_path"].endswith("val/hazy/1426_3.png")
    back = build_dataset(_cfg(tmp_path, phase="val", direction="BtoA", **RESIDE))[0]
    assert (_val(back["A"]), _val(back["B"])) == (26, 129)


def test_reside_without_regex_or_with_a_missing_clear_image(tmp_path):
    root = _reside(tmp_path)
    with pytest.raises(DataError, match=r"6 file\(s\) in .*train/hazy have no partner in .*train/clear"):
        build_dataset(_cfg(root, ab_dirs=RESIDE["ab_dirs"]))
    (root / "train" / "clear" / "1401.png").unlink()
    with pytest.raises(DataError, match=r"3 file\(s\) .* no partner.*1401_1"):
        build_dataset(_cfg(root, **RESIDE))


def test_unpaired_uses_the_same_folders(tmp_path):
    ds = build_dataset(_cfg(_reside(tmp_path), kind="unpaired", ab_dirs=RESIDE["ab_dirs"]), train=False)
    assert len(ds) == 6 and "/hazy/" in ds[0]["A_path"] and "/clear/" in ds[0]["B_path"]


def test_ab_dirs_from_yaml(tmp_path):
    root = _reside(tmp_path / "sots")
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(
        f"data:\n  kind: paired\n  root: {root}\n  ab_dirs: ['{{phase}}/hazy', '{{phase}}/clear']\n"
        f"  pair_regex: '^(.*)_\\d+$'\n  preprocess: none\n  num_workers: 0\n"
    )
    cfg = load_config(cfg_file)
    assert cfg.data.ab_dirs == ["{phase}/hazy", "{phase}/clear"]
    assert len(build_dataset(cfg.data)) == 6
    with pytest.raises(ConfigError, match="data.ab_dirs: expected a list"):
        load_config(cfg_file, ["data.ab_dirs=hazy"])


@pytest.mark.parametrize("dirs, message", [
    (["hazy"], "expected two folder names"),
    (["hazy", ""], "expected two folder names"),
    (["{split}/hazy", "clear"], "only placeholder allowed is {phase}"),
    (["{phase}", "{phase}"], "same folder 'train'"),
])
def test_bad_ab_dirs(tmp_path, dirs, message):
    with pytest.raises(ConfigError, match=f"data.ab_dirs: .*{message}"):
        build_dataset(_cfg(_reside(tmp_path), ab_dirs=dirs))
