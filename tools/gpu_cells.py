"""The cells of ``tools/gpu_check.py``: each trains, translates, exports or benchmarks through i2i's own
APIs and command-line functions, and returns ``(detail, extra)``, raises :class:`Skip` or :class:`Fail`."""
from __future__ import annotations

import contextlib
import gc
import json
import math
import subprocess
import sys
import traceback
from dataclasses import fields
from pathlib import Path

import benchmark  # tools/benchmark.py, beside this file
import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent
PRECISIONS = {"fp32": "off", "bf16": "bf16", "fp16": "fp16"}  # cell name -> train.amp
PARITY = (2e-3, 1e-4)  #: rtol, atol of compiled against eager fp32 losses
RESUME_RTOL = 1e-5  #: straight against resumed losses
TILED_LEVELS = 2  #: largest tiled-untiled difference, in 8-bit levels
NOT_CHECKED = "not checked (needs CUDA)"

#: small networks at 256 px on a GPU, tiny ones at 32 px in the dry run; a translator not listed trains with
#: its own defaults
SMALL = {
    "pix2pix": {"nets": {"G": {"name": "unet", "num_downs": 8, "ngf": 16}, "D": {"ndf": 16, "n_layers": 3}}},
    "cyclegan": {"nets": {"G": {"name": "resnet", "n_blocks": 3, "ngf": 16}, "D": {"ndf": 16, "n_layers": 3}}},
    "unit": {"nets": {"G": {"dim": 16, "n_res": 2}, "D": {"ndf": 16, "n_layers": 3, "num_scales": 2}}},
    "cogan": {"model": {"inversion_steps": 20}, "nets": {"G": {"size": 256, "ngf": 8}, "D": {"size": 256, "ndf": 8}}},
    "dehazegan": {"model": {"vgg_weights": "random"}, "data": {"root": "builtin:haze"},
                  "nets": {"G": {"name": "tiramisu", "n_blocks": 3, "layers": 2, "bottleneck_layers": 3, "growth": 8,
                                 "first_channels": 16, "up_channels": 16}, "D": {"ndf": 16, "n_layers": 2}}},
}
TINY = {
    "pix2pix": {"nets": {"G": {"name": "unet", "num_downs": 5, "ngf": 8}, "D": {"ndf": 8, "n_layers": 2}}},
    "cyclegan": {"nets": {"G": {"name": "resnet", "n_blocks": 2, "ngf": 8}, "D": {"ndf": 8, "n_layers": 2}}},
    "unit": {"nets": {"G": {"dim": 4, "n_res": 2}, "D": {"ndf": 4, "n_layers": 2, "num_scales": 2}}},
    "cogan": {"model": {"inversion_steps": 5}, "nets": {"G": {"size": 32, "ngf": 4}, "D": {"size": 32, "ndf": 4}}},
    "dehazegan": {"model": {"vgg_weights": "random"}, "data": {"root": "builtin:haze"},
                  "nets": {"G": {"name": "tiramisu", "n_blocks": 2, "layers": 2, "bottleneck_layers": 2, "growth": 4,
                                 "first_channels": 8, "up_channels": 8}, "D": {"ndf": 8, "n_layers": 2}}},
}
#: tools/benchmark.py cases with tiny networks at 32 px (dry run)
TINY_BENCH = {
    "pix2pix_256": ["nets.G.name=unet", "nets.G.num_downs=5", "nets.G.ngf=8", "nets.D.ndf=8"],
    "cyclegan_256": ["nets.G.name=resnet", "nets.G.n_blocks=1", "nets.G.ngf=8", "nets.D.ndf=8", "nets.D.n_layers=2"],
}
BENCH_SETTINGS = {"fp32-eager": ["--amp", "off", "--no-channels-last"],
                  "bf16-cl-compile": ["--amp", "bf16", "--channels-last", "--compile"]}


class Skip(Exception):
    """The cell did not run; the message says why."""


class Fail(Exception):
    """The cell ran and failed; ``extra`` goes to the JSON."""

    def __init__(self, detail: str, **extra) -> None:
        super().__init__(detail)
        self.extra = extra


def first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0][:200] if lines else ''}"


@contextlib.contextmanager
def kept_torch_flags():
    """Restore torch's process-wide numerics switches a cell (a Trainer) may set."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    kept = (cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32, matmul.allow_tf32,
            torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    try:
        yield
    finally:
        cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32, matmul.allow_tf32 = kept[:4]
        torch.use_deterministic_algorithms(kept[4], warn_only=kept[5])


class Work:
    """What the cells share: device, sizes, configs, the checkpoints and eager losses of train cells."""

    def __init__(self, tmp: Path, dry: bool, steps: int, bench_max_batch: int) -> None:
        self.tmp, self.dry, self.steps, self.bench_max_batch = tmp, dry, steps, bench_max_batch
        self.device = "cpu" if dry else "cuda"
        self.size = 32 if dry else 256
        self.nets = TINY if dry else SMALL
        self.checkpoints: dict[str, Path] = {}
        self.losses: dict[tuple, list[dict]] = {}

    def config(self, name: str, entry: dict | None = None) -> Path:
        """The YAML config of translator ``name`` (or of ``entry``) for this check."""
        path = self.tmp / "configs" / f"{name}.yaml"
        if not path.is_file():
            entry = self.nets.get(name, {}) if entry is None else entry
            size = self.size
            tree = {"model": {"name": entry.get("name", name), **entry.get("model", {})}, "nets": entry.get("nets", {}),
                    "data": {"root": "builtin:shapes", "load_size": size + size // 8, "crop_size": size,
                             "batch_size": 2, "num_workers": 0, **entry.get("data", {})},
                    "train": {"out_dir": str(self.tmp / "runs"), "device": self.device, "seed": 1,
                              "checkpoint_every": 100000, "threads": 1 if self.dry else 0},
                    "log": {"every": 1, "sample_every": 100000, "progress": False, "tensorboard": False}}
            if name == "cogan":  # its networks work at the size they are built for
                tree["data"]["load_size"] = size
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(yaml.safe_dump(tree))
        return path


def release() -> None:
    """Free what the cells before left (the benchmark runs in another process)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _endless(loader):
    while True:
        yield from loader


def _where(exc: BaseException) -> str:
    """``file:line (function)`` of the innermost frame of i2i in ``exc``'s traceback, and of the innermost one."""
    import i2i

    package = Path(i2i.__file__).resolve().parent
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if Path(f.filename).resolve().is_relative_to(package)]
    where = [f"{Path(f.filename).resolve().relative_to(package.parent)}:{f.lineno} ({f.name})" for f in ours[-1:]]
    if frames and (not ours or frames[-1] is not ours[-1]):
        where.append(f"via {Path(frames[-1].filename).name}:{frames[-1].lineno} ({frames[-1].name})")
    return " ".join(where) or "(no traceback)"


def sync_step(trainer, batch) -> str | None:
    """One more training step under ``set_sync_debug_mode("error")``: None, or where it waited for the device."""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        trainer.train_step(batch)
    except RuntimeError as exc:
        if "synchroniz" not in str(exc):
            raise
        return f"{str(exc).strip().splitlines()[0]} at {_where(exc)}"
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()
    return None


def _compare(a: list[dict], b: list[dict], rtol: float, atol: float) -> tuple[bool, float]:
    """Whether the loss records ``a`` equal ``b`` within ``atol + rtol |b|``, and their largest relative difference."""
    if len(a) != len(b) or any(x.keys() != y.keys() for x, y in zip(a, b)):
        return False, math.inf
    pairs = [(x[k], y[k]) for x, y in zip(a, b) for k in x]
    worst = max((abs(u - v) / max(abs(v), 1e-12) for u, v in pairs), default=0.0)
    return all(abs(u - v) <= atol + rtol * abs(v) for u, v in pairs), worst


def _train_steps(work: Work, trainer, keep: bool) -> tuple[list[dict], list[str], str, Path | None]:
    """``work.steps`` training steps (their losses stay on the device until all ran), then on CUDA one more under
    the sync debug mode: the losses, the bad steps, the host-sync verdict, and the checkpoint if ``keep``."""
    batches, rows, bad = _endless(trainer.loader), [], []
    for _ in range(work.steps):
        logs, out = trainer.train_step(next(batches))
        trainer.step += 1
        del out
        rows.append({k: v.detach() for k, v in logs.items()})
        bad += trainer.bad_losses
    losses = [{k: float(v) for k, v in row.items()} for row in rows]
    checkpoint = trainer.save() if keep else None
    sync = NOT_CHECKED if work.dry else (sync_step(trainer, next(batches)) or "none")
    return losses, bad, sync, checkpoint


def train(work: Work, t: str, precision: str, mode: str, layout: str):
    """A few training steps of one translator with one precision, mode and layout."""
    from i2i.configure import load_config
    from i2i.engine.trainer import Trainer

    slug = f"{t}-{precision}-{mode}-{layout}"
    cfg = load_config(work.config(t), [f"train.name={slug}", f"train.amp={PRECISIONS[precision]}",
                                       f"train.compile={str(mode == 'compile').lower()}",
                                       f"train.channels_last={str(layout == 'channels_last').lower()}"])
    if mode == "compile":
        torch._dynamo.reset()  # a fresh cache per cell: no recompilation limit reached across cells
    trainer = Trainer(cfg, work.tmp / "runs" / slug)
    try:
        keep = (precision, mode, layout) == ("fp32", "eager", "nchw")  # translate and export use it
        losses, bad, sync, checkpoint = _train_steps(work, trainer, keep)
        compile_failed = bool(trainer.compiled and trainer.compiled["failed"])
    finally:
        if trainer.logger:
            trainer.logger.close()
        del trainer
    if checkpoint is not None:
        work.checkpoints[t] = checkpoint
    problems = [f"non-finite {k} at step {i + 1}" for i, row in enumerate(losses) for k, v in row.items()
                if not math.isfinite(v)][:3] + [f"bad step: {b}" for b in bad[:1]]
    if compile_failed:
        problems.append("torch.compile failed, the networks ran eagerly")
    notes = [f"{work.steps} steps, {len(losses[-1])} losses finite"]
    if mode == "eager":
        work.losses[(t, precision, layout)] = losses
    elif precision == "fp32":
        eager = work.losses.get((t, precision, layout))
        if eager is None:
            notes.append("no eager fp32 cell to compare with")
        else:
            close, worst = _compare(losses, eager, *PARITY)
            notes.append(f"vs eager: max rel diff {worst:.1e}")
            if not close:
                problems.append(f"compiled losses differ from eager ones by up to {worst:.1e} (relative; "
                                f"tolerance {PARITY[0]:g} + {PARITY[1]:g} absolute)")
    if sync not in ("none", NOT_CHECKED):
        problems.append(f"host sync: {sync}")
    extra = {"losses": losses, "sync": sync}
    if problems:
        raise Fail("; ".join(problems), **extra)
    return "; ".join(notes + [f"host sync: {sync}"]), extra


def _metrics(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k.startswith("train/") and "sec_per_it" not in k} for r in rows]


def resume(work: Work, t: str):
    """N steps in one run against N/2, then ``i2i-train --resume`` to N."""
    from i2i.cli.train import main as train_main
    from i2i.config.schema import TrainConfig

    n, runs = work.steps, work.tmp / "runs"
    sets = ["train.cudnn_benchmark=false"]
    if "deterministic" in {f.name for f in fields(TrainConfig)}:
        sets.append("train.deterministic=true")
    for name, steps in ((f"{t}-straight", n), (f"{t}-halves", n // 2)):
        if train_main(["--config", str(work.config(t)), "--set", f"train.name={name}", f"train.max_steps={steps}",
                       *sets]) != 0:
            raise Fail(f"i2i-train {name} failed")
    if train_main(["--resume", str(runs / f"{t}-halves"), "--set", f"train.max_steps={n}"]) != 0:
        raise Fail("i2i-train --resume failed")
    straight, resumed = _metrics(runs / f"{t}-straight"), _metrics(runs / f"{t}-halves")
    close, worst = _compare(resumed, straight, RESUME_RTOL, 0.0)
    exact = straight == resumed
    extra = {"bit_identical": exact, "settings": sets}
    what = f"{n} steps against {n // 2} + resumed {n - n // 2} ({', '.join(sets)}): "
    if not close:
        raise Fail(what + f"losses differ by up to {worst:.1e} (relative)", **extra)
    return what + ("bit-identical losses" if exact else f"losses within {worst:.1e} (not bit-identical)"), extra


def _checkpoint(work: Work, t: str) -> Path:
    if work.checkpoints.get(t) is None:
        raise Skip(f"no checkpoint: train/{t}/fp32/eager/nchw did not run")
    return work.checkpoints[t]


def translate(work: Work, t: str):
    """``i2i-translate --amp bf16`` of a folder of two images of the translator's validation data."""
    from i2i.cli.translate import main as translate_main
    from i2i.configure import load_config
    from i2i.data import build_dataset
    from i2i.data.io import read_image, tensor_to_image, write_image

    ckpt = _checkpoint(work, t)
    data = build_dataset(load_config(work.config(t)).data, train=False)
    folder = work.tmp / f"translate-{t}"
    for i in range(2):
        write_image(folder / "in" / f"{i}.png", tensor_to_image(data[i]["A"]))
    workers = ["--workers", "0", "--write-threads", "0"] if work.dry else []
    rc = translate_main(["--checkpoint", str(ckpt), "--input", str(folder / "in"), "--output", str(folder / "out"),
                         "--amp", "bf16", "--device", work.device, *workers])
    if rc != 0:
        raise Fail(f"i2i-translate exit code {rc}")
    outs = sorted(p for p in (folder / "out").iterdir() if not p.name.startswith("."))  # not the output marker
    shapes = {read_image(p).shape[:2] for p in outs}
    if len(outs) != 2 or shapes != {(work.size, work.size)}:
        raise Fail(f"expected 2 outputs of {work.size} x {work.size}, got {[p.name for p in outs]} of {shapes}")
    return f"2 images of {work.size} px, --amp bf16", {}


def export(work: Work, t: str):
    """``i2i-export --format onnx``, then the file in onnxruntime (CPU) against the generator on the device."""
    from i2i import load_translator
    from i2i.cli.export import TOLERANCE
    from i2i.cli.export import main as export_main

    ckpt = _checkpoint(work, t)
    translator = load_translator(ckpt, device=work.device)
    if not translator.model.exports_images:
        raise Skip(f"{t}'s generators take latent vectors: no image-to-image export")
    try:
        import onnx  # noqa: F401
        import onnxruntime
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise Skip(f"{exc.name} is not installed (pip install onnx onnxscript onnxruntime)") from None
    path = work.tmp / f"{t}.onnx"
    rc = export_main(["--checkpoint", str(ckpt), "--format", "onnx", "--output", str(path)])
    if rc != 0:
        raise Fail(f"i2i-export exit code {rc}")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    gen = translator.model.generator("AtoB").eval()
    x = torch.rand(1, translator.channels("AtoB")[0], work.size, work.size, generator=torch.Generator().manual_seed(0))
    x = x * 2 - 1
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    cudnn.allow_tf32 = matmul.allow_tf32 = False  # fp32 against fp32 (kept_torch_flags restores them)
    with torch.no_grad():
        ours = gen(x.to(translator.device)).float().cpu()
    diff = float((torch.from_numpy(session.run(None, {"image": x.numpy()})[0]) - ours).abs().max())
    detail = f"onnxruntime (CPU) against PyTorch on {work.device}: max |diff| {diff:.1e}"
    if not diff <= TOLERANCE:
        raise Fail(f"{detail} > {TOLERANCE:g}", max_abs_diff=diff)
    return detail, {"max_abs_diff": diff}


def tiled(work: Work):
    """An image above the tiling threshold, translated tiled and untiled by a generator without global statistics."""
    import i2i.tiling
    from i2i.cli.translate import main as translate_main
    from i2i.configure import load_config
    from i2i.data.io import read_image, write_image
    from i2i.engine.trainer import Trainer

    # (height, width, tile, overlap, --tile-above or the default): the overlap covers the receptive field
    h, w, tile, overlap, above = (232, 160, 144, 64, 144 * 144) if work.dry else (2112, 2048, 512, 96, None)
    entry = {"name": "pix2pix", "model": {"test_batch_stats": False},
             "nets": {"G": {"name": "resnet", "n_blocks": 0, "ngf": 8, "norm": "none"}, "D": {"ndf": 8}}}
    trainer = Trainer(load_config(work.config("tiled", entry)), work.tmp / "runs" / "tiled")
    ckpt = trainer.save()
    del trainer
    folder = work.tmp / "tiled"
    write_image(folder / "in" / "big.png", np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8))
    windows, real = [0], i2i.tiling.tiled

    def counting(fn, x, *args, **kwargs):
        def counted(window):
            windows[0] += 1
            return fn(window)
        return real(counted, x, *args, **kwargs)

    base = ["--checkpoint", str(ckpt), "--input", str(folder / "in"), "--device", work.device, "--workers", "0"]
    i2i.tiling.tiled = counting
    try:
        tiles = ["--tile", str(tile), "--tile-overlap", str(overlap)] + (["--tile-above", str(above)] if above else [])
        rcs = [translate_main([*base, "--output", str(folder / "tiled"), *tiles]),
               translate_main([*base, "--output", str(folder / "whole"), "--tile", "0"])]
    finally:
        i2i.tiling.tiled = real
    if rcs != [0, 0]:
        raise Fail(f"i2i-translate exit codes {rcs}")
    a, b = (read_image(folder / d / "big.png").astype(int) for d in ("tiled", "whole"))
    diff = int(np.abs(a - b).max())
    detail = f"{h} x {w} image in {windows[0]} tiles of {tile} px (overlap {overlap}): max diff {diff}/255"
    if windows[0] < 2 or diff > TILED_LEVELS:
        raise Fail(detail + ("" if windows[0] >= 2 else "; the image was not tiled"), max_diff=diff)
    return detail, {"tiles": windows[0], "max_diff": diff}


def _bench_args(work: Work, case: str) -> list[str]:
    if work.dry:
        return ["--threads", "1", "--steps", "1", "--warmup", "1", "--workers", "0", "--data", "builtin:shapes",
                "--set", *TINY_BENCH[case], "data.load_size=36", "data.crop_size=32"]
    return ["--steps", "10", "--warmup", "3"]


def largest_batch(work: Work, case: str, setting: str) -> tuple[int, str]:
    """The largest batch (doubling from 1, at most ``work.bench_max_batch`` and the training set's size) with which
    eager training steps of the case fit in memory, and why no larger one was tried."""
    from i2i.configure import load_config
    from i2i.engine.trainer import Trainer

    args = benchmark.parser().parse_args(["--device", work.device, *BENCH_SETTINGS[setting], *_bench_args(work, case)])
    args.compile = False
    cfg = load_config(ROOT / benchmark.CASES[case]["config"], benchmark.overrides(case, args, str(work.tmp / "probe")))
    trainer = Trainer(cfg, work.tmp / "probe" / f"{case}-{setting}")
    batch, fits = next(iter(trainer.loader)), 1
    bound, why = min((work.bench_max_batch, f"--bench-max-batch {work.bench_max_batch}"),
                     (len(trainer.dataset), f"the {len(trainer.dataset)} training images"))
    try:
        while fits * 2 <= bound:
            n = fits * 2
            big = {k: v.repeat(n, *[1] * (v.dim() - 1)) if torch.is_tensor(v) else v * n for k, v in batch.items()}
            try:
                trainer.train_step(big)
                if work.device == "cuda":
                    torch.cuda.synchronize()
            except torch.cuda.OutOfMemoryError:
                return fits, f"batch {n} ran out of memory"
            fits = n
        return fits, why
    finally:
        del trainer, batch


def _benchmark(work: Work, case: str, setting: str, batch: int) -> tuple[subprocess.CompletedProcess, Path]:
    out = work.tmp / f"bench-{case}-{setting}-{batch}.json"
    cmd = [sys.executable, str(ROOT / "tools" / "benchmark.py"), "--device", work.device, "--cases", case,
           "--batch-size", str(batch), "--out", str(out), *BENCH_SETTINGS[setting], *_bench_args(work, case)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600), out


def bench(work: Work, case: str, setting: str, largest: bool):
    """``tools/benchmark.py`` of one case and setting at batch 1, or at the largest batch that fits."""
    batch, why = largest_batch(work, case, setting) if largest else (1, "")
    release()
    if largest and batch == 1:
        raise Skip(f"the largest batch is 1 ({why}): see the batch-1 cell")
    proc, out = _benchmark(work, case, setting, batch)
    if largest and proc.returncode != 0 and "out of memory" in proc.stderr:  # the compiled step needs more
        why += f"; batch {batch} ran out of memory in benchmark.py"
        batch //= 2
        proc, out = _benchmark(work, case, setting, batch)
    if proc.returncode != 0:
        tail = [line for line in proc.stderr.splitlines() if line.strip()][-1:] or ["(no output)"]
        raise Fail(f"benchmark.py exit code {proc.returncode}: {tail[0][:200]}")
    r = json.loads(out.read_text())["results"][case]
    extra = {"batch_size": batch, "images_per_s": r["images_per_s"], "fraction_of_peak": r.get("fraction_of_peak"),
             "larger_batch": why or None, "result": r}
    detail = (f"batch {batch}: {r['images_per_s']:g} images/s ({batch / r['step_only_sec']:.4g} without the loader's "
              f"wait), fraction_of_peak {r.get('fraction_of_peak', 'n/a (peak unknown)')}"
              + (f"; larger: {why}" if why else ""))
    if r.get("compile_failed"):
        raise Fail(detail + "; torch.compile failed, ran eagerly", **extra)
    return detail, extra


def distributed(gpus: int, timeout_s: float):
    """``tests/test_distributed.py`` on a machine with several GPUs."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_distributed.py"],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout_s)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    summary = lines[-1] if lines else "(no output)"
    failed = [line for line in lines if line.startswith("FAILED")][:3]
    if proc.returncode != 0:
        raise Fail(f"on {gpus} GPUs: {summary}" + (f"; {'; '.join(failed)}" if failed else ""))
    return f"on {gpus} GPUs: {summary}", {"gpus": gpus}
