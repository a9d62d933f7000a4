#!/usr/bin/env python
"""Save a PNG screenshot of a gallery page (``i2i-eval --html``) in headless Chromium.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package (test extras):

    python tools/screenshot_page.py results/gallery/index.html results/gallery_sots.png --sort psnr
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("page", type=Path, help="the page's index.html")
    ap.add_argument("out", type=Path, help="PNG to write")
    ap.add_argument("--width", type=int, default=1200)
    ap.add_argument("--height", type=int, default=900)
    ap.add_argument("--sort", default="", help="click this score's column header first (twice with --descending)")
    ap.add_argument("--descending", action="store_true")
    args = ap.parse_args(argv)
    if not args.page.is_file():
        print(f"error: no page at {args.page}", file=sys.stderr)
        return 2
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    driver_bin = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not (Path(chromium).is_file() and Path(driver_bin).is_file()):
        print("error: chromium and chromedriver are needed (apt-get install chromium chromium-driver)", file=sys.stderr)
        return 1
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait
    except ImportError:
        print("error: selenium is not installed (pip install -e '.[test]')", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in FLAGS + [f"--window-size={args.width},{args.height}", f"--user-data-dir={profile}"]:
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(driver_bin), options=options)
        try:
            # the viewport, not the window, is width x height (a window's frame takes some of its height)
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": args.width, "height": args.height, "deviceScaleFactor": 1, "mobile": False})
            driver.get(args.page.resolve().as_uri())
            if args.sort:
                headers = [th for th in driver.find_elements(By.CSS_SELECTOR, "#rows th.sort")
                           if th.text.split() and th.text.split()[0] == args.sort]
                if not headers:
                    print(f"error: the page has no score column {args.sort!r}", file=sys.stderr)
                    return 2
                for _ in range(2 if args.descending else 1):
                    headers[0].click()
            driver.execute_script("for (const img of document.images) { img.loading = 'eager'; img.decoding = 'sync'; }")
            loaded = "return [...document.images].every(i => i.complete && i.naturalWidth > 0)"
            WebDriverWait(driver, 60).until(lambda d: d.execute_script(loaded))
            driver.execute_script("return Promise.all([...document.images].map(i => i.decode()))")
            args.out.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(args.out))
        finally:
            driver.quit()
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
