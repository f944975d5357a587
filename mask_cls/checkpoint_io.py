"""Checkpoints in one place. Saving: to a temp file, then renamed (a run killed while saving keeps
its previous ``last.ckpt`` whole, loadable and resumable). Loading: safe unpickling, and the
saved config read as data before a model is built from it."""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from mask_cls.errors import ConfigError
from mask_cls.io import atomic_write
from mask_cls.module_config import ModuleConfig

if TYPE_CHECKING:
    from mask_cls.module import MaskClassifier


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint reader and writer for a run: saves to a temp file, then renames;
    loads with :func:`read_checkpoint` (safe unpickling) and confines the callbacks' state to
    ``checkpoints`` (this run's folder, see :func:`confine_callback_state`) before Lightning
    hands it to the callbacks."""

    def __init__(self, checkpoints: str | Path | None = None, allow_unsafe: bool = False,
                 root: str | Path | None = None) -> None:
        super().__init__()
        self.checkpoints = Path(checkpoints) if checkpoints is not None else None
        self.allow_unsafe = allow_unsafe
        self.root = Path(root) if root is not None else None  # every checkpoint written or removed lies inside

    def _confined(self, path: Any) -> None:
        import tempfile

        spawn_transfer = Path(path).name == ".temp.ckpt" and Path(path).parent.parent == Path(tempfile.gettempdir())
        if self.root is not None and not spawn_transfer:  # ddp_spawn hands rank 0's weights back in a temp folder
            from mask_cls.places import check_inside

            check_inside(path, self.root, "checkpoint")

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        self._confined(path)
        save = super().save_checkpoint
        atomic_write(path, lambda tmp: save(checkpoint, tmp, storage_options))

    def remove_checkpoint(self, path) -> None:
        self._confined(path)
        super().remove_checkpoint(path)

    def load_checkpoint(self, path, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        checkpoint = read_checkpoint(str(path), allow_unsafe=self.allow_unsafe)
        if self.checkpoints is not None:
            confine_callback_state(checkpoint, self.checkpoints, Path(path).parent)
        return checkpoint


#: the file paths in a ``ModelCheckpoint`` state (``best_k_models`` is keyed by paths too)
PATH_KEYS = ("best_model_path", "kth_best_model_path", "last_model_path")


def _within(path: Any, folder: Path) -> bool:
    """Whether ``path`` names a file inside ``folder`` once ``..`` and links are resolved."""
    if not isinstance(path, str) or not path or "\0" in path:
        return False
    try:
        return Path(path).resolve().is_relative_to(folder)
    except (OSError, RuntimeError, ValueError):
        return False


def confine_callback_state(checkpoint: dict, folder: str | Path, source: str | Path) -> None:
    """Make every path in the callbacks' state of ``checkpoint`` lie inside ``folder`` (this
    run's checkpoints folder), in place, before Lightning restores the callbacks from it.

    Lightning's ``ModelCheckpoint`` removes files named in its restored state (``best_k_models``,
    ``last_model_path``, ``best_model_path``) and trusts the paths a checkpoint holds: a crafted
    ``RUN/checkpoints/../../victim`` was deleted recursively. Here every path is resolved and
    kept only inside ``folder``; the rest are dropped with one warning. The one file followed
    out of it is the resumed run's best checkpoint, when it is a readable ``.ckpt`` directly in
    ``source`` (the folder of the checkpoint being loaded, which the user named): it is copied
    into ``folder``, so a worse epoch after the resume never wins."""
    import logging

    states = checkpoint.get("callbacks")
    if not isinstance(states, dict):
        return
    folder, source, dropped = Path(folder).resolve(), Path(source).resolve(), []
    for state in states.values():
        if not isinstance(state, dict) or not any(k in state for k in (*PATH_KEYS, "best_k_models", "dirpath")):
            continue
        _carry_best(state, folder, source)
        for key in PATH_KEYS:
            if state.get(key) and not _within(state[key], folder):
                dropped.append(state[key])
                state[key] = ""
        models = state.get("best_k_models")
        if isinstance(models, dict):
            dropped += [p for p in models if not _within(p, folder)]
            state["best_k_models"] = {p: v for p, v in models.items() if _within(p, folder)}
        elif models is not None:
            state["best_k_models"] = {}
        state.pop("dirpath", None)  # restored as the callback's own folder
    # the resumed run's own checkpoint files (beside the one loaded) go quietly
    foreign = [str(p) for p in dropped if not (isinstance(p, str) and Path(p).resolve().parent == source)]
    if foreign:
        logging.getLogger("mask_cls").warning(
            "the checkpoint's callback state names %d path(s) outside this run's %s (first: %s): dropped",
            len(foreign), folder, foreign[0][:200])


def _carry_best(state: dict, folder: Path, source: Path) -> None:
    """Copy the resumed run's best checkpoint into ``folder`` and point the state at the copy."""
    import shutil

    score, best = state.get("best_model_score"), state.get("best_model_path")
    if score is None or not isinstance(best, str) or not best or not Path(best).is_absolute():
        return
    real = Path(best).resolve()
    if real.parent != source or real.suffix != ".ckpt" or not real.is_file() or (folder / real.name).exists():
        return
    try:
        read_checkpoint(str(real))  # a checkpoint itself, safe to unpickle: nothing else is copied
    except ConfigError:
        return
    copy = str(atomic_write(folder / real.name, lambda tmp: shutil.copyfile(real, tmp)))
    score = torch.as_tensor(score)
    state.update(best_model_path=copy, kth_best_model_path=copy, kth_value=score, best_model_score=score,
                 best_k_models={copy: score})


def read_checkpoint(path: str, map_location: str = "cpu", allow_unsafe: bool = False) -> dict:
    """``torch.load`` with ``weights_only=True``: tensors and plain values only, no code runs.

    A checkpoint that needs arbitrary unpickling is refused unless ``allow_unsafe`` (the user
    trusts its source and said ``allow_unsafe_checkpoint=true``).
    """
    from mask_cls.models.weights import check_regular

    if not Path(path).exists():
        raise ConfigError(f"{path}: checkpoint not found")
    check_regular(path, "checkpoint")
    if Path(path).stat().st_size == 0:
        raise ConfigError(f"{path}: not a readable checkpoint (empty file)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if not allow_unsafe:
            first = str(e).strip().splitlines()[0][:120]
            raise ConfigError(f"{path}: refused, the checkpoint needs arbitrary unpickling, which can run code "
                              f"({first}); pass allow_unsafe_checkpoint=true only if you trust it") from None
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # any other failure of the unpickler on a damaged or foreign file
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
        raise ConfigError(f"{path}: not a readable checkpoint ({first})") from None
    from mask_cls.models.weights import check_finite

    if isinstance(ckpt, dict) and isinstance(ckpt.get("state_dict"), dict):
        check_finite({k: v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}, str(path))  # metrics may be -inf
    return ckpt


def load_checkpoint(path: str, map_location: str = "cpu", allow_unsafe: bool = False) -> MaskClassifier:
    """Rebuild a module from a checkpoint alone (its saved config), with safe unpickling."""
    from mask_cls.module import MaskClassifier

    ckpt = read_checkpoint(path, map_location, allow_unsafe)
    if "hyper_parameters" not in ckpt or "config" not in ckpt.get("hyper_parameters", {}):
        raise ConfigError(f"{path}: not a mask_cls checkpoint (no saved config)")
    config = ckpt["hyper_parameters"]["config"]
    if not isinstance(config, Mapping) or not isinstance(config.get("model"), Mapping):
        raise ConfigError(f"{path}: not a mask_cls checkpoint (its saved config has no model)")
    try:  # the saved config is data: plain values, and targets only from the project's registries
        module = MaskClassifier(ModuleConfig.from_checkpoint(config))
    except ConfigError as e:
        raise ConfigError(f"{path}: refused, its saved config is not a plain mask_cls model config ({e})") from None
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"{path}: its saved config does not describe a model ({type(e).__name__}: {e})") from None
    try:
        module.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise ConfigError(f"{path}: does not match the model it describes ({str(e).splitlines()[0][:160]})") from None
    return module.eval()
