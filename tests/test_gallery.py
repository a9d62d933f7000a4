"""The HTML gallery of i2i-eval / i2i-translate: its file, its data, and the page in headless Chromium."""
import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from i2i.cli.eval import main as eval_main
from i2i.data.io import read_image, write_image
from i2i.gallery import write_gallery
from i2i.metrics import colors_to_labels, psnr, segmentation_scores, ssim

HOSTILE = ["<script>alert(1)</script>", "<img src=x onerror=alert(2)>"]  # the first is a folder '<script>alert(1)<'
NAMES = ["a", "b", "sub/c", "same", "wide", "z&amp;"] + HOSTILE
PALETTE = {1: (255, 0, 0), 2: (0, 0, 255), 3: (0, 255, 0)}


def page_data(page: Path) -> dict:
    text = page.read_text()
    m = re.search(r'<script type="application/json" id="gallery-data">(.*?)</script>', text, re.S)
    assert m, "no data block"
    return json.loads(m.group(1))


def row_scores(data: dict) -> dict[str, dict[str, float]]:
    keys = [m["key"] for m in data["metrics"]]
    return {r["name"]: {k: float(v) for k, v in zip(keys, r["s"]) if v is not None} for r in data["rows"]}


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory):
    """pred/target/input folders of 8 images (one identical pair, one of another size), scored with --html."""
    root = tmp_path_factory.mktemp("eval")
    rng = np.random.default_rng(0)
    for i, name in enumerate(NAMES):
        shape = (20, 30, 3) if name == "wide" else (24, 24, 3)
        target = rng.integers(0, 256, shape).astype(np.uint8)
        noise = 0 if name == "same" else 4 + 6 * i
        pred = np.clip(target.astype(int) + rng.integers(-noise, noise + 1, shape), 0, 255).astype(np.uint8)
        write_image(root / "target" / f"{name}.png", target)
        write_image(root / "pred" / f"{name}.png", pred)
        write_image(root / "input" / f"{name}.jpg", 255 - target)
    write_image(root / "input" / "extra.png", np.zeros((8, 8, 3), np.uint8))  # an input without pred: left out
    out = root / "html"
    rc = eval_main(["--pred", str(root / "pred"), "--target", str(root / "target"), "--input", str(root / "input"),
                    "--metrics", "psnr,ssim", "--batch-size", "3", "--html", str(out), "--device", "cpu"])
    assert rc == 0
    return SimpleNamespace(root=root, out=out, page=out / "index.html")


# --------------------------------------------------------------------------- the file
def test_hostile_names_are_escaped(evaluation):
    text = evaluation.page.read_text()
    for name in HOSTILE + ["z&amp;"]:
        assert name not in text
    assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in text
    assert text.count("<script") == 2  # the data block and the page's own script
    assert sorted(r["name"] for r in page_data(evaluation.page)["rows"]) == sorted(NAMES)


def test_images_are_copied_beside_the_page(evaluation):
    data = page_data(evaluation.page)
    assert data["columns"] == ["input", "output", "target"]
    for row in data["rows"]:
        for column, rel, folder in zip(data["columns"], row["img"], ["input", "pred", "target"]):
            assert not Path(rel).is_absolute() and rel.startswith("img/")
            copy = evaluation.out / rel
            source = evaluation.root / folder / (row["name"] + (".jpg" if column == "input" else ".png"))
            assert copy.read_bytes() == source.read_bytes(), (column, row["name"])
    assert sum(1 for p in (evaluation.out / "img").rglob("*") if p.is_file() and p.name != ".i2i-files") == 3 * len(NAMES)


def test_per_image_scores_equal_the_metric_functions(evaluation):
    data = page_data(evaluation.page)
    scores = row_scores(data)
    for name in NAMES:
        pred = read_image(evaluation.root / "pred" / f"{name}.png")
        target = read_image(evaluation.root / "target" / f"{name}.png")
        assert scores[name]["psnr"] == pytest.approx(psnr(pred, target), rel=1e-12)
        assert scores[name]["ssim"] == pytest.approx(ssim(pred, target), rel=1e-12)
    assert scores["same"]["psnr"] == float("inf")
    assert dict(data["summary"])["ssim"] == pytest.approx(np.mean([s["ssim"] for s in scores.values()]))
    assert [m["higher"] for m in data["metrics"]] == [True, True]


def test_segmentation_scores_and_coloured_labels(tmp_path):
    rng = np.random.default_rng(1)
    colours = np.array([(0, 0, 0)] + list(PALETTE.values()), np.uint8)
    (tmp_path / "palette.txt").write_text("".join(f"{i} {r} {g} {b}\n" for i, (r, g, b) in PALETTE.items()))
    for name in ["p", "q"]:
        gt = rng.integers(1, 4, (16, 16)).astype(np.uint8)
        pred = np.where(rng.random((16, 16)) < 0.7, gt, rng.integers(1, 4, (16, 16))).astype(np.uint8)
        write_image(tmp_path / "labels" / f"{name}.png", gt)
        write_image(tmp_path / "pred" / f"{name}.png", colours[pred])
    out = tmp_path / "html"
    assert eval_main(["--pred", str(tmp_path / "pred"), "--labels", str(tmp_path / "labels"), "--palette",
                      str(tmp_path / "palette.txt"), "--metrics", "seg", "--html", str(out)]) == 0
    data = page_data(out / "index.html")
    assert data["columns"] == ["output", "labels"]
    scores = row_scores(data)
    for row in data["rows"]:
        gt = read_image(tmp_path / "labels" / f"{row['name']}.png", channels=1)[:, :, 0]
        pred = read_image(tmp_path / "pred" / f"{row['name']}.png")
        expected = segmentation_scores(colors_to_labels(pred, PALETTE), gt, num_classes=4)
        assert scores[row["name"]]["seg_pixel_acc"] == pytest.approx(expected["pixel_acc"])
        assert scores[row["name"]]["seg_miou"] == pytest.approx(expected["miou"])
        assert np.array_equal(read_image(out / row["img"][1]), colours[gt])


def test_bad_arguments_are_one_line_errors(evaluation, tmp_path, capsys):
    base = ["--pred", str(evaluation.root / "pred"), "--target", str(evaluation.root / "target"), "--metrics", "psnr"]
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    cases = [
        (base + ["--input", str(evaluation.root / "input")], "--input is only used with --html"),
        (base + ["--html", str(tmp_path / "busy")], "holds other files"),
        (base + ["--html", str(evaluation.root / "pred" / "html")], "lies inside the input folder --pred"),
        (base + ["--html", str(tmp_path / "h"), "--input", str(evaluation.root / "target" / "sub")], "without partner in --input"),
    ]
    for args, message in cases:
        assert eval_main(args) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine" and not (tmp_path / "h").exists()


def test_write_gallery_arrays_rerun_and_non_finite(tmp_path):
    rows = [{"name": f"r{i}", "images": {"out": np.full((4, 6, 3), 40 * i, np.uint8)}, "scores": {"loss": v}}
            for i, v in enumerate([0.5, float("inf"), float("nan"), 2.0])]
    page = write_gallery(tmp_path / "g", iter(rows), summary={"loss": float("-inf")}, title="<b>t</b>")
    data = page_data(page)
    assert [r["s"][0] for r in data["rows"]] == [0.5, "Infinity", "NaN", 2.0]
    assert data["summary"] == [["loss", "-Infinity"]] and data["metrics"] == [{"key": "loss", "higher": None}]
    assert "<title>&lt;b&gt;t&lt;/b&gt;</title>" in page.read_text()
    assert np.array_equal(read_image(tmp_path / "g" / data["rows"][3]["img"][0]), rows[3]["images"]["out"])
    # writing again into the same folder replaces the old images
    write_gallery(tmp_path / "g", rows[:1])
    assert [p.name for p in (tmp_path / "g" / "img").rglob("*.png")] == ["000000.png"]
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == ["img", "index.html"]
    (tmp_path / "g").chmod(0o755)
    write_gallery(tmp_path / "g", rows[:1])  # a page served by another user shows its images
    assert (tmp_path / "g" / "img").stat().st_mode & 0o777 == 0o755


def test_translate_html_writes_a_page(tmp_path):
    from i2i.cli.train import main as train_main
    from i2i.cli.translate import main as translate_main

    cfg = {"model": "pix2pix",
           "nets": {"G": {"name": "unet", "num_downs": 5, "ngf": 8}, "D": {"ndf": 8, "n_layers": 2}},
           "data": {"root": "builtin:shapes", "load_size": 36, "crop_size": 32, "batch_size": 2, "num_workers": 0, "max_items": 4},
           "train": {"out_dir": str(tmp_path / "runs"), "max_steps": 1}, "log": {"progress": False}}
    (tmp_path / "pix2pix.yaml").write_text(yaml.safe_dump(cfg))
    assert train_main(["--config", str(tmp_path / "pix2pix.yaml")]) == 0
    rng = np.random.default_rng(0)
    for name in ["x.png", "deep/y.png", HOSTILE[1] + ".png"]:
        write_image(tmp_path / "in" / name, rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    out = tmp_path / "gallery"
    assert translate_main(["--checkpoint", str(tmp_path / "runs" / "pix2pix"), "--input", str(tmp_path / "in"),
                           "--output", str(tmp_path / "out"), "--html", str(out)]) == 0
    data = page_data(out / "index.html")
    assert data["columns"] == ["input", "output"] and data["metrics"] == [] and HOSTILE[1] not in (out / "index.html").read_text()
    assert sorted(r["name"] for r in data["rows"]) == sorted(["x.png", "deep/y.png", HOSTILE[1] + ".png"])
    for row in data["rows"]:
        assert (out / row["img"][0]).read_bytes() == (tmp_path / "in" / row["name"]).read_bytes()
        assert (out / row["img"][1]).read_bytes() == (tmp_path / "out" / row["name"]).read_bytes()


# --------------------------------------------------------------------------- the page in a browser
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1200,900"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    driver_bin = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    missing = [p for p in (chromium, driver_bin) if not Path(p).is_file()]
    if missing:
        reason = f"no browser: {', '.join(missing)} not found (apt-get install chromium chromium-driver)"
        print(reason)
        pytest.skip(reason)
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    options.unhandled_prompt_behavior = "ignore"  # an alert stays open, for the test to find
    driver = webdriver.Chrome(service=Service(driver_bin), options=options)
    yield driver
    driver.quit()


def _names(driver) -> list[str]:
    return driver.execute_script("return [...document.querySelectorAll('#rows tbody td.name')].map(td => td.textContent)")


def _header(driver, label: str):
    from selenium.webdriver.common.by import By

    return next(th for th in driver.find_elements(By.CSS_SELECTOR, "#rows th.sort") if th.text.split()[0] == label)


def _all_images_loaded(driver) -> list[int]:
    """Scroll every image into view, wait until each has finished; return their natural widths."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.execute_script("for (const img of document.images) img.scrollIntoView()")
    WebDriverWait(driver, 10).until(lambda d: d.execute_script("return [...document.images].every(i => i.complete)"))
    return driver.execute_script("return [...document.images].map(i => i.naturalWidth)")


def _no_alert(driver) -> bool:
    from selenium.common.exceptions import NoAlertPresentException

    try:
        driver.switch_to.alert
    except NoAlertPresentException:
        return True
    return False


def test_page_in_chromium(evaluation, browser, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(evaluation.page.as_uri())
    assert sorted(_names(browser)) == sorted(NAMES)
    widths = _all_images_loaded(browser)
    assert len(widths) == 3 * len(NAMES) and all(w > 0 for w in widths), widths
    # the hostile names are text: no element, script or dialog came of them
    assert browser.execute_script("return document.querySelectorAll('#rows script, #rows img[src=x]').length") == 0
    assert _no_alert(browser)
    # sorting by a score: first click worst first, second click best first
    psnr_of = row_scores(page_data(evaluation.page))
    worst_first = sorted(NAMES, key=lambda n: psnr_of[n]["psnr"])
    assert _names(browser) != worst_first
    _header(browser, "psnr").click()
    assert _names(browser) == worst_first and _names(browser)[-1] == "same"
    browser.execute_script("window.scrollTo(0, 0)")
    shot = tmp_path / "gallery.png"
    assert browser.save_screenshot(str(shot))
    print(f"screenshot: {shot}")
    _header(browser, "psnr").click()
    assert _names(browser) == worst_first[::-1]
    # filtering by name, thumbnails link to the copied full image
    browser.find_element(By.ID, "filter").send_keys("ALERT")
    assert sorted(_names(browser)) == sorted(HOSTILE)
    hrefs = browser.execute_script("return [...document.querySelectorAll('#rows tbody a')].map(a => a.href)")
    assert len(hrefs) == 6 and all(h.startswith(evaluation.out.as_uri() + "/img/") for h in hrefs)
    assert _no_alert(browser)


def test_paging_in_chromium(browser, tmp_path):
    from selenium.webdriver.common.by import By

    values = [5.0, 3.0, 9.0, 1.0, 7.0, 2.0, 8.0]
    rows = [{"name": f"n{i}", "images": {"out": np.full((6, 6, 3), 30 * i, np.uint8)}, "scores": {"fid": v}}
            for i, v in enumerate(values)]
    page = write_gallery(tmp_path / "g", rows, page_size=3)
    browser.get(page.as_uri())
    assert _names(browser) == ["n0", "n1", "n2"]
    browser.find_element(By.ID, "next").click()
    assert _names(browser) == ["n3", "n4", "n5"] and all(w == 6 for w in _all_images_loaded(browser))
    assert browser.find_element(By.ID, "pageinfo").text == "page 2 / 3"
    _header(browser, "fid").click()  # lower is better: worst (largest) first, over all pages, back on page 1
    assert _names(browser) == ["n2", "n6", "n4"]
    browser.find_element(By.ID, "next").click()
    browser.find_element(By.ID, "next").click()
    assert _names(browser) == ["n3"] and not browser.find_element(By.ID, "next").is_enabled()


def test_screenshot_tool_saves_the_sorted_page(evaluation, browser, tmp_path):
    import subprocess
    import sys

    tool = Path(__file__).resolve().parent.parent / "tools" / "screenshot_page.py"
    out = tmp_path / "shot.png"
    proc = subprocess.run([sys.executable, str(tool), str(evaluation.page), str(out), "--sort", "psnr",
                           "--width", "800", "--height", "600"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert read_image(out).shape[:2] == (600, 800)
    proc = subprocess.run([sys.executable, str(tool), str(evaluation.page), str(out), "--sort", "nope"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "no score column 'nope'" in proc.stderr
