"""Every path i2i writes is checked against what the user gave: never an input, never inside an input folder,
never a file i2i did not make; earlier translation outputs are not translated again."""
import json

import numpy as np
import pytest

from i2i.cli.eval import main as eval_main
from i2i.cli.train import main as train_main
from i2i.cli.translate import main as translate_main
from i2i.errors import ConfigError
from i2i.gallery import write_gallery
from reliability_helpers import snapshot, tiny_config
from test_translate_safety import dcp, make_inputs, one_error_line


@pytest.fixture
def scored(tmp_path):
    make_inputs(tmp_path / "pred", ["a.png", "b.png"])
    make_inputs(tmp_path / "target", ["a.png", "b.png"], size=16)
    return tmp_path


def test_eval_json_is_never_an_input_nor_inside_an_input_folder(scored, capsys):
    base = ["--pred", str(scored / "pred"), "--target", str(scored / "target"), "--metrics", "psnr"]
    before = snapshot(scored)
    for json_path, message in ((scored / "pred" / "a.png", "lies inside the input folder --pred"),
                               (scored / "target" / "new.json", "lies inside the input folder --target"),
                               (scored / "target", "is a folder")):
        assert eval_main(base + ["--json", str(json_path)]) == 2
        assert message in one_error_line(capsys)
    (scored / "notes.json").write_text('{"mine": 1}')
    assert eval_main(base + ["--json", str(scored / "notes.json")]) == 2
    assert one_error_line(capsys) == (f"error: --json {scored / 'notes.json'}: exists and is not a results file of "
                                      "i2i-eval; give a new file name")
    assert snapshot(scored) == {**before, "notes.json": b'{"mine": 1}'}
    # its own earlier results file is replaced
    assert eval_main(base + ["--json", str(scored / "r.json")]) == 0
    assert eval_main(base + ["--json", str(scored / "r.json"), "--metrics", "ssim"]) == 0
    assert list(json.loads((scored / "r.json").read_text())["metrics"]) == ["ssim"]


def test_a_reused_gallery_never_deletes_the_images_it_shows(scored, capsys):
    base = ["--target", str(scored / "target"), "--metrics", "psnr"]
    gallery = scored / "g"
    assert eval_main(base + ["--pred", str(scored / "pred"), "--html", str(gallery)]) == 0
    shown = gallery / "img" / "1"  # the gallery's copies of the preds, evaluated in their turn
    before = snapshot(scored)
    capsys.readouterr()
    assert eval_main(base + ["--pred", str(shown), "--html", str(gallery)]) == 2
    assert one_error_line(capsys) == (f"error: --html {gallery}: the input --pred {shown} lies inside "
                                      f"{gallery / 'img'}, where i2i writes; give another folder")
    assert dcp(shown, scored / "out", "--html", str(gallery)) == 2
    assert "the input --input" in one_error_line(capsys)
    assert dcp(scored / "pred", gallery / "img" / "9", "--html", str(gallery)) == 2
    assert "the input --output" in one_error_line(capsys)
    assert snapshot(scored) == before


def test_a_gallery_only_replaces_the_files_it_wrote(tmp_path):
    rows = [{"name": "r", "images": {"out": np.zeros((4, 4, 3), np.uint8)}}]
    write_gallery(tmp_path / "g", rows)
    write_gallery(tmp_path / "g", rows * 2)  # its own files: replaced
    assert sorted(p.name for p in (tmp_path / "g" / "img" / "0").iterdir()) == ["000000.png", "000001.png"]
    (tmp_path / "g" / "img" / "mine.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"img/mine.txt was not written by the gallery"):
        write_gallery(tmp_path / "g", rows)
    assert (tmp_path / "g" / "img" / "mine.txt").read_text() == "mine"
    assert (tmp_path / "g" / "img" / "0" / "000001.png").is_file()


def test_earlier_translation_outputs_inside_the_input_are_not_translated_again(tmp_path, capsys):
    src = tmp_path / "photos"
    make_inputs(src, ["a.png", "sub/b.jpg"])
    assert dcp(src, src / "dehazed") == 0
    assert dcp(src / "sub", src / "sub" / "again") == 0  # an output folder deeper down
    capsys.readouterr()
    assert dcp(src, tmp_path / "elsewhere") == 0  # another command's output folders are left out
    assert "3 image(s) under --input" in capsys.readouterr().err
    assert sorted(p.relative_to(tmp_path / "elsewhere").as_posix() for p in (tmp_path / "elsewhere").rglob("*.*")
                  ) == [".i2i-translations", "a.png", "sub/b.jpg"]
    # a marked folder given as the input itself is translated (a second pass is asked for)
    assert dcp(src / "dehazed", tmp_path / "twice") == 0
    assert (tmp_path / "twice" / "a.png").is_file() and (tmp_path / "twice" / "sub" / "b.jpg").is_file()


def test_a_run_folder_never_lies_inside_the_training_data(tmp_path, capsys):
    make_inputs(tmp_path / "data" / "trainA", ["a.png"])
    make_inputs(tmp_path / "data" / "trainB", ["b.png"])
    cfg = tiny_config(tmp_path)
    args = ["--config", str(cfg), "--set", f"data.root={tmp_path / 'data'}", "data.kind=unpaired",
            "model=cyclegan", "train.max_steps=1"]
    assert train_main(args + [f"train.out_dir={tmp_path / 'data' / 'trainA' / 'runs'}"]) == 2
    assert one_error_line(capsys) == (f"error: train.out_dir {tmp_path / 'data' / 'trainA' / 'runs'}: lies inside "
                                      f"the input folder data.root {tmp_path / 'data'}; give a path outside it")
    assert not (tmp_path / "data" / "trainA" / "runs").exists()


def test_a_run_folder_is_trained_in_by_one_process_at_a_time(tmp_path, capsys):
    import subprocess
    import sys

    cfg = tiny_config(tmp_path)
    assert train_main(["--config", str(cfg), "--set", "train.max_steps=1"]) == 0
    run = tmp_path / "runs" / "tiny"
    holder = subprocess.Popen([sys.executable, "-c", f"""
import sys
from i2i.engine.runlock import lock_run_dir
lock = lock_run_dir({str(run)!r})
print("locked", flush=True)
sys.stdin.read()
"""], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = snapshot(run)
        capsys.readouterr()
        assert train_main(["--resume", str(run), "--set", "train.max_steps=2"]) == 1
        assert one_error_line(capsys) == (f"error: {run}: another i2i-train (pid {holder.pid}) is training in this "
                                          "run folder; wait for it to end or resume another run")
        assert snapshot(run) == before
    finally:
        holder.kill()  # ends without letting go: the lock goes with the process
        holder.wait()
    assert train_main(["--resume", str(run), "--set", "train.max_steps=2"]) == 0
    assert (run / "checkpoints" / "step_0000002.pt").is_file()
