"""The sections of a run config, as dataclasses with defaults, types and ranges.

A run is one YAML file with the sections ``model``, ``nets``, ``losses``,
``optim``, ``data``, ``train``, ``log`` and ``eval``.  This module knows types
and value ranges only (``rule(...)`` metadata, checked when a config is read);
names that live in registries (networks, losses, metrics, dataset kinds) are
checked by the package that owns them, and the ``model`` section is the
translator's own settings dataclass (a subclass of :class:`ModelSettings`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List


def rule(default: Any = None, *, factory: Any = None, **checks: Any) -> Any:
    """A dataclass field with value checks: ``ge``, ``gt``, ``le``, ``lt``, ``choices``, ``length``."""
    if factory is not None:
        return field(default_factory=factory, metadata=checks)
    return field(default=default, metadata=checks)


# --------------------------------------------------------------------------- model
@dataclass
class ModelSettings:
    """Base of every translator's settings (the ``model:`` section)."""

    name: str = "pix2pix"  #: registered translator (pix2pix, cyclegan, ...)
    #: inference normalizes with the test batch's statistics and keeps dropout on, as in training
    #: (``Model.translate``; running statistics are left as they were)
    test_batch_stats: bool = False


# --------------------------------------------------------------------------- networks
@dataclass
class NetConfig:
    name: str = "unet_256"  #: registered network builder
    init: str = rule("normal", choices=("normal", "xavier", "kaiming", "orthogonal"))  #: weight init
    init_gain: float = rule(0.02, ge=0)  #: std (normal) or gain (others)
    spectral_norm: bool = False  #: wrap conv/linear weights with spectral normalization
    params: dict = field(default_factory=dict)  #: builder keyword arguments (written flat in YAML)


# --------------------------------------------------------------------------- losses
@dataclass
class PenaltyConfig:
    type: str = "none"  #: registered penalty (gp, lp, r1, r2, dragan, bcr) or none
    weight: float = rule(10.0, ge=0)  #: multiplier of the penalty in D's loss
    every: int = rule(1, ge=1)  #: lazy regularization: apply every k D steps, weight times k
    params: dict = field(default_factory=dict)  #: extra keyword arguments of the penalty


@dataclass
class GanLossConfig:
    name: str = "vanilla"  #: registered adversarial objective (vanilla, lsgan, hinge, wgangp, ...)
    params: dict = field(default_factory=dict)  #: its keyword arguments (written flat in YAML)


@dataclass
class LossConfig:
    """Settings shared by every adversarial translator (any model x any objective)."""

    gan: GanLossConfig = field(default_factory=GanLossConfig)  #: ``gan: hinge`` or ``gan: {name: lsgan, half: false}``
    penalty: PenaltyConfig = field(default_factory=PenaltyConfig)
    n_critic: int = rule(0, ge=0)  #: D steps per G step (0 = the objective's own: 5 for the WGANs, else 1)


# --------------------------------------------------------------------------- optimizers
@dataclass
class OptimConfig:
    """One optimizer group (``optim.G``, ``optim.D``...): algorithm, lr schedule, clipping."""

    type: str = rule("adam", choices=("adam", "adamw", "rmsprop", "sgd"))
    lr: float = rule(2e-4, gt=0)
    betas: List[float] = rule(factory=lambda: [0.5, 0.999], length=2, ge=0, lt=1)  #: adam, adamw
    eps: float = rule(1e-8, gt=0)
    momentum: float = rule(0.0, ge=0, lt=1)  #: sgd, rmsprop
    weight_decay: float = rule(0.0, ge=0)  #: L2 (adam, rmsprop, sgd) or decoupled (adamw)
    grad_clip: float = rule(0.0, ge=0)  #: max global gradient norm (0 = off; unscaled first under fp16)
    schedule: str = rule("linear", choices=("linear", "step", "cosine", "constant"))
    #: schedule clock: ``epoch`` (the lr changes after each epoch) or ``iter`` (after each iteration)
    unit: str = rule("epoch", choices=("epoch", "iter"))
    step_size: int = rule(50, ge=1)  #: step schedule: multiply the lr by ``gamma`` every this many units
    gamma: float = rule(0.1, gt=0)


# --------------------------------------------------------------------------- data
@dataclass
class DataConfig:
    kind: str = "aligned"  #: aligned, paired, unpaired or single
    root: str = ""  #: dataset folder, or builtin:NAME for the generated data
    phase: str = "train"  #: sub-folder(s) to read: train -> train/ or trainA/ trainB/
    direction: str = rule("AtoB", choices=("AtoB", "BtoA"))
    in_channels: int = rule(3, choices=(1, 3))  #: channels of A images (1 = grayscale, 3 = RGB)
    out_channels: int = rule(3, choices=(1, 3))  #: channels of B images
    preprocess: str = rule("resize_and_crop", choices=("resize_and_crop", "scale_width", "crop", "none"))
    load_size: int = rule(286, gt=0)  #: resize to this size before cropping
    crop_size: int = rule(256, gt=0)  #: random crop size (train) / centre size (test)
    #: preprocess none: each image's height and width are rounded to a multiple of this (a multiple of
    #: the generator's size multiple: 256 for unet_256)
    size_multiple: int = rule(4, gt=0)
    no_flip: bool = False  #: disable random horizontal flips
    batch_size: int = rule(1, gt=0)
    num_workers: int = rule(2, ge=0)  #: DataLoader worker processes (0 = load in the main process)
    prefetch_factor: int = rule(2, ge=1)  #: batches each worker loads ahead (with num_workers > 0)
    max_items: int = rule(0, ge=0)  #: use at most this many images (0 = all)
    #: keep decoded images in memory up to this many MiB per loading process (0 = off); for small
    #: datasets read many times (each DataLoader worker holds its own cache)
    cache_mb: int = rule(0, ge=0)
    #: images with more pixels are not decoded (0 = $I2I_MAX_PIXELS, else 67,108,864 = 8192 x 8192)
    max_pixels: int = rule(0, ge=0)
    pair_regex: str = ""  #: paired: regex whose first group turns an A stem into its B stem
    #: paired/unpaired: the A and B folders under root, ``{phase}`` replaced by the phase
    #: (RESIDE layout: ``["{phase}/hazy", "{phase}/clear"]``)
    ab_dirs: List[str] = rule(factory=lambda: ["{phase}A", "{phase}B"], length=2)


# --------------------------------------------------------------------------- training
@dataclass
class EmaConfig:
    decay: float = rule(0.0, ge=0, lt=1)  #: EMA of the generators' weights per step (0 = off; e.g. 0.999)
    start: int = rule(0, ge=0)  #: copy the weights unchanged until this step, then average


@dataclass
class DivergenceConfig:
    """A watched loss far above its running level for many log steps: roll back, then stop (i2i.engine.divergence)."""

    watch: List[str] = field(default_factory=list)  #: logged losses to watch (e.g. [G_L1]; empty = off)
    factor: float = rule(2.0, gt=1)  #: high = above factor x the running level
    patience: int = rule(5, ge=1)  #: log steps in a row high before the run counts as diverged
    warmup: int = rule(5, ge=1)  #: healthy log steps that form the level before anything counts as high
    smoothing: float = rule(0.1, gt=0, le=1)  #: weight of a new healthy interval in the running level
    lr_factor: float = rule(0.5, gt=0, le=1)  #: each rollback multiplies every learning rate by this
    max_rollbacks: int = rule(2, ge=0)  #: then stop with one line (exit 1)


@dataclass
class TrainConfig:
    epochs: int = rule(100, ge=0)  #: epochs at the initial learning rate
    epochs_decay: int = rule(100, ge=0)  #: further epochs with each group's schedule applied (linear: to 0)
    max_steps: int = rule(0, ge=0)  #: stop after this many iterations (0 = run all epochs)
    time_budget_min: float = rule(0.0, ge=0)  #: stop after this many minutes of training (0 = no limit)
    #: mixed precision (fp16 needs CUDA; auto: bf16 where the CPU or GPU computes bf16 natively, else off)
    amp: str = rule("off", choices=("off", "bf16", "fp16", "auto"))
    seed: int = rule(0, ge=0, le=2 ** 32 - 1)  #: 32 bits: the per-epoch and per-step seeds derived from it fit 64
    device: str = "auto"  #: auto (cuda, mps, cpu), or an explicit torch device
    out_dir: str = "runs"  #: parent folder of run folders
    name: str = ""  #: run folder name (default: the config file's stem)
    #: fine-tune: start the networks from a run folder, a checkpoint file or an i2i-export folder (a new run:
    #: fresh optimizers, schedules and step count; networks the file lacks start fresh); ignored on resume
    init_from: str = ""
    checkpoint_every: int = rule(1000, ge=1)  #: steps between checkpoints (also at each epoch end and at the end)
    keep_last: int = rule(3, ge=1)  #: checkpoints kept on disk
    threads: int = rule(0, ge=0)  #: torch CPU threads (0 = torch's default)
    channels_last: bool = False  #: networks and 4-D input batches in channels-last memory layout (NHWC)
    #: torch.compile each network's forward (a one-line warning and eager execution if compilation fails)
    compile: bool = False
    compile_mode: str = rule("default", choices=("default", "reduce-overhead", "max-autotune",
                                                 "max-autotune-no-cudagraphs"))  #: torch.compile mode
    cudnn_benchmark: bool = True  #: CUDA: let cuDNN pick the fastest convolution algorithms per input shape
    #: CUDA: fp32 convolutions and matmuls on TF32 tensor cores (10-bit mantissa); false: full fp32 (slower)
    tf32: bool = True
    #: deterministic kernels (cuDNN deterministic, no autotuning, torch.use_deterministic_algorithms, cuBLAS
    #: workspace): on CUDA a rerun or a resume repeats a run exactly; slower
    deterministic: bool = False
    #: CPU (glibc): freed tensor memory stays in the process for the next step (up to 1 GiB unused) instead of
    #: going back to the OS after each op, to be faulted in again
    cpu_malloc_cache: bool = True
    #: steps in a row with a NaN or infinite loss (each skipped, no update) before training stops
    max_bad_steps: int = rule(10, ge=1)
    #: with several processes, batch norms use the statistics of the global batch (SyncBatchNorm); no-op in one
    sync_bn: bool = False
    ema: EmaConfig = field(default_factory=EmaConfig)
    divergence: DivergenceConfig = field(default_factory=DivergenceConfig)


@dataclass
class LogConfig:
    every: int = rule(50, ge=1)  #: steps between scalar logs (JSONL and TensorBoard)
    sample_every: int = rule(500, ge=1)  #: steps between PNG sample grids
    tensorboard: bool = True
    progress: bool = True  #: tqdm progress bar


@dataclass
class EvalConfig:
    every: int = rule(0, ge=0)  #: steps between evaluations (0 = off)
    root: str = ""  #: validation dataset folder (same layout as data.root; '' = data.root)
    phase: str = "val"
    #: how validation images are prepared ('' = as data.preprocess, with centre crops; none: whole images)
    preprocess: str = rule("", choices=("", "resize_and_crop", "scale_width", "crop", "none"))
    direction: str = rule("AtoB", choices=("AtoB", "BtoA"))  #: translation scored against the other domain
    metrics: List[str] = field(default_factory=lambda: ["psnr", "ssim"])
    best: str = ""  #: keep checkpoint best.pt by this metric ('' = off)
    max_items: int = rule(0, ge=0)  #: evaluate at most this many items (0 = all)
    palette: str = ""  #: seg metric: palette file (lines ``index R G B``)
    inception_weights: str = ""  #: fid/kid/is: local FID Inception weights file
    ema: bool = True  #: score the EMA weights when train.ema is on (false: the raw weights)
    html: bool = False  #: also write a results page per evaluation: RUN/eval/step_N/index.html


@dataclass
class Config:
    #: Python modules (dotted names or .py files) imported before the rest is read: user networks,
    #: losses, datasets or translators, registered by name
    imports: List[str] = field(default_factory=list)
    model: ModelSettings = field(default_factory=ModelSettings)
    nets: Dict[str, NetConfig] = field(default_factory=dict)  #: network role -> network
    losses: LossConfig = field(default_factory=LossConfig)
    optim: Dict[str, OptimConfig] = field(default_factory=dict)  #: optimizer group -> optimizer
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


# open sections: keys that are not fields go into ``params``
OPEN = {NetConfig: "params", PenaltyConfig: "params", GanLossConfig: "params"}
# shorthand: ``model: cyclegan`` == ``model: {name: cyclegan}``
SHORTHAND = {ModelSettings: "name", NetConfig: "name", PenaltyConfig: "type", GanLossConfig: "name",
             OptimConfig: "type"}
