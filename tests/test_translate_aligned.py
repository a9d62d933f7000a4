"""--aligned on images too narrow to hold A|B halves: each is skipped and listed, the others are translated."""
import numpy as np

from i2i.cli.translate import main as translate_main
from i2i.data.io import read_image, write_image


def test_images_without_halves_are_skipped_and_listed(tmp_path, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    sizes = {"one.png": (1, 1), "column.png": (9, 1), "row.png": (1, 8), "pair.png": (16, 32), "odd.png": (2, 3)}
    for name, (h, w) in sizes.items():
        write_image(src / name, np.full((h, w, 3), 100, np.uint8))
    assert translate_main(["--method", "dcp", "--aligned", "--input", str(src), "--output", str(out),
                           "--workers", "0"]) == 1
    err = capsys.readouterr().err
    assert "translated 3 image(s)" in err and "skipped 2 unreadable file(s):" in err and "Traceback" not in err
    for name in ("one.png", "column.png"):
        assert f"{src / name}: --aligned: 1 px wide: no A|B halves" in err
        assert not (out / name).exists()
    # the A half of each other image: half its width (rounded down)
    for name in ("row.png", "pair.png", "odd.png"):
        h, w = sizes[name]
        assert read_image(out / name).shape == (h, w // 2, 3)
