"""``i2i-download NAME``: fetch a public pix2pix/CycleGAN dataset (i2i.data.download) into ``--root``."""
from __future__ import annotations

import argparse
import sys

from ..data.download import BASE_URL_ENV, DEFAULT_BASE_URL, download, known_names, resolve
from .common import add_debug, run
from .paths import check_output_dir


def main(argv: list[str] | None = None) -> int:
    """``i2i-download NAME [--root DIR] [--force] [--base-url URL]``; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="i2i-download", description="Download a public pix2pix/CycleGAN dataset.",
        epilog=f"names: {', '.join(known_names())}; cityscapes must be obtained from its website",
    )
    parser.add_argument("name", help="dataset name; cyclegan/facades and cyclegan/maps pick the unpaired versions")
    parser.add_argument("--root", default="datasets", help="parent folder of the datasets (default: datasets)")
    parser.add_argument("--force", action="store_true", help="replace an existing dataset folder")
    parser.add_argument("--base-url", default=None, help=f"server to download from (default: ${BASE_URL_ENV} "
                                                         f"or {DEFAULT_BASE_URL})")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_debug(parser)
    return run(_download_command, parser.parse_args(argv))


def _download_command(args) -> int:
    check_output_dir(args.root, "--root")
    try:
        target = download(args.name, args.root, force=args.force, base_url=args.base_url,
                          progress=not args.no_progress)
    except KeyboardInterrupt:
        print("error: interrupted; nothing was installed", file=sys.stderr)
        return 130
    spec = resolve(args.name)
    print(f"{args.name}: installed in {target} (use data.kind: {spec.kind}, data.root: {target})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
