"""A translator as a folder for deployment: ``config.yaml`` and ``model.safetensors``.

``i2i-export --format safetensors`` writes it; :func:`i2i.load_translator` and ``i2i-translate --checkpoint``
read it as they read a checkpoint.  It holds what translation needs and nothing else:

* ``config.yaml``: the run's resolved config (plain YAML, read with ``yaml.safe_load``);
* ``model.safetensors``: the state of the inference networks (a model's ``ema_group``, its generators; the
  whole model where it has none), the averaged weights where the run kept them, no discriminator, optimizer
  or training state.  Its metadata says which weights (``ema`` or ``raw``) and from which checkpoint.

Reading never unpickles anything: safetensors is a JSON header and raw tensor bytes.  A file that is not
whole, holds NaN or Inf, or does not fit the model its config builds is one line (:class:`CheckpointError`).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch
import yaml

from .errors import CheckpointError
from .utils import current_umask, replace_folder

CONFIG = "config.yaml"
WEIGHTS = "model.safetensors"
FORMAT = "1"  #: the folder layout's version, in the weights' metadata
MAX_CONFIG_BYTES = 1 << 20


def is_folder(path: str | Path) -> bool:
    """``path`` is a folder written by :func:`save_folder` (it holds ``model.safetensors``)."""
    return Path(path).is_dir() and (Path(path) / WEIGHTS).is_file()


def inference_names(model: torch.nn.Module) -> list[str]:
    """State-dict names of the tensors translation uses: those of the modules of the model's ``ema_group``
    (all of them where it has none), in state-dict order."""
    state = model.state_dict(keep_vars=True)
    group = getattr(model, "ema_group", None)
    if group is None:
        return [k for k, v in state.items() if torch.is_tensor(v)]
    wanted = {id(t) for module in model.optim_groups()[group] for t in (*module.parameters(), *module.buffers())}
    return [k for k, v in state.items() if torch.is_tensor(v) and id(v) in wanted]


def save_folder(translator, folder: str | Path, replace: bool = False) -> Path:
    """Write ``translator``'s config and inference weights into ``folder``, atomically (a hidden temporary
    folder renamed into place); an existing ``folder`` is replaced only with ``replace``."""
    from safetensors.torch import save_file

    from ._version import __version__
    from .config import to_dict

    folder = Path(folder)
    state = translator.model.state_dict()
    tensors = {k: state[k].detach().to("cpu").contiguous().clone() for k in inference_names(translator.model)}
    meta = {"format": FORMAT, "i2i_version": __version__, "weights": translator.weights, "source": translator.checkpoint}
    header = f"# written by i2i-export from {translator.checkpoint}\n" if translator.checkpoint.isprintable() else ""
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name[:100]}.", suffix=".tmp", dir=folder.parent))
    try:
        (work / CONFIG).write_text(header + yaml.safe_dump(to_dict(translator.cfg), sort_keys=False))
        save_file(tensors, str(work / WEIGHTS), metadata=meta)
        for path, mode in ((work / CONFIG, 0o666), (work / WEIGHTS, 0o666), (work, 0o777)):
            os.chmod(path, mode & ~current_umask())
        if folder.exists() and not replace:
            raise CheckpointError(f"{folder} exists")
        replace_folder(work, folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return folder


def read_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """``(tensors, metadata)`` of a safetensors file; one line if it is not a whole one."""
    from safetensors.torch import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            meta = dict(fh.metadata() or {})
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as exc:  # noqa: BLE001 - a damaged, truncated or foreign file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise CheckpointError(f"{path}: not a readable safetensors file ({first})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an i2i-export weights file (metadata format {meta.get('format')!r}, "
                              f"expected {FORMAT!r})")
    for name, value in tensors.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"{path}: its weights hold NaN or Inf ({name})")
    return tensors, meta


def read_config_tree(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            text = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read it ({exc.strerror or type(exc).__name__})") from None
    if len(text) > MAX_CONFIG_BYTES:
        raise CheckpointError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes; not an i2i-export config")
    try:
        tree = yaml.safe_load(text.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(tree, dict):
        raise CheckpointError(f"{path}: not a config (expected a mapping)")
    return tree


def load_folder(folder: str | Path, weights: str = "ema", imports=(), trust_imports: bool = False):
    """``(config, model with its inference weights, description, "ema" or "raw")`` of a folder written by :func:`save_folder`.
    ``imports`` and ``trust_imports`` as for a checkpoint (its config's ``imports:`` run only if allowed)."""
    from .configure import config_of_checkpoint
    from .checkpoint import FORMAT as CONFIG_FORMAT
    from .errors import ConfigError
    from .models import build_model

    folder = Path(folder)
    tree = read_config_tree(folder / CONFIG)
    try:
        cfg = config_of_checkpoint({"config": tree, "format": CONFIG_FORMAT}, check_paths=False, imports=imports,
                                   trust_imports=trust_imports, source=str(folder / CONFIG))
    except ConfigError as exc:
        raise CheckpointError(f"{folder / CONFIG}: not a valid config: {exc}") from None
    tensors, meta = read_weights(folder / WEIGHTS)
    if weights == "raw" and meta.get("weights") == "ema":
        raise ConfigError(f"weights: raw: {folder} holds the averaged (EMA) weights only; "
                          "export the checkpoint again with i2i-export --weights raw")
    model = build_model(cfg)
    _load(model, tensors, f"{folder / WEIGHTS}: its weights do not fit the {cfg.model.name} model its config builds")
    kind = "ema" if meta.get("weights") == "ema" else "raw"
    return cfg, model, f"{folder}: {kind} weights of {meta.get('source') or 'a checkpoint'}", kind


def _load(model: torch.nn.Module, tensors: dict[str, torch.Tensor], what: str) -> None:
    """Load exactly the inference tensors into ``model``; one line naming the first difference otherwise."""
    names = inference_names(model)
    own = model.state_dict()
    missing = [k for k in names if k not in tensors]
    unexpected = [k for k in tensors if k not in names]
    shapes = [f"{k}: {tuple(tensors[k].shape)} in the file, {tuple(own[k].shape)} in the model" for k in names
              if k in tensors and tensors[k].shape != own[k].shape]
    problems = [f"{len(missing)} missing (first {missing[0]})" if missing else "",
                f"{len(unexpected)} unexpected (first {unexpected[0]})" if unexpected else "",
                f"{len(shapes)} of another shape (first {shapes[0]})" if shapes else ""]
    if any(problems):
        raise CheckpointError(f"{what}: {'; '.join(p for p in problems if p)}")
    model.load_state_dict(tensors, strict=False)  # strict on the inference tensors, checked above
