"""FLOPs of a network, counted layer by layer from the shapes it sees.

Why not torch's ``FlopCounterMode``: it counts the backward pass of a grouped convolution as if the
convolution were dense (the input gradient of a ``groups=64`` 3x3 convolution is counted about
65x its forward), so for depthwise-heavy networks (EfficientNet, MobileNet) its training count is
an order of magnitude too high. Here the forward is counted analytically (every ``Conv2d`` of any
``groups``, every ``Linear``; 2 FLOPs per multiply-add; normalisation and activations left out, as
in the papers' and timm's figures) and a training step is taken as 3x the forward: the backward
computes the gradient with respect to the input and with respect to the weights, each as many
multiply-adds as the forward.
"""

from __future__ import annotations

import torch
from torch import nn


def _one_image(model: nn.Module, x: torch.Tensor, hooks: list) -> None:
    """One forward pass of the first image with ``hooks`` counting, then the hooks removed."""
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in hooks:
            h.remove()


def forward_macs(model: nn.Module, x: torch.Tensor) -> float:
    """Multiply-adds of one forward pass per image (convolutions and linear layers)."""
    total = 0.0

    def conv(module: nn.Conv2d, _, out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        total += out[0].numel() * (module.in_channels // module.groups) * kh * kw

    def linear(module: nn.Linear, _, out: torch.Tensor) -> None:
        nonlocal total
        total += out[0].numel() * module.in_features

    _one_image(model, x, [m.register_forward_hook(conv) for m in model.modules() if isinstance(m, nn.Conv2d)]
               + [m.register_forward_hook(linear) for m in model.modules() if isinstance(m, nn.Linear)])
    return total


def train_flops_per_image(model: nn.Module, x: torch.Tensor) -> float:
    """FLOPs of one training image: 2 per multiply-add, forward x 3 (forward + two backward products)."""
    return 3 * 2 * forward_macs(model, x)


def activation_bytes(model: nn.Module, x: torch.Tensor, bytes_per_value: int = 4) -> float:
    """An estimate of the memory traffic of one training image: every leaf module's input and
    output read or written once in the forward, and about twice that in the backward (the
    activations read again, their gradients written and read), so 3x the forward's; weights
    left out (they stay in cache across a batch). For depthwise-heavy networks this, not the
    FLOPs, bounds the speed: the roofline is bytes moved."""
    total = 0.0

    def leaf(module: nn.Module, inputs, out) -> None:
        nonlocal total
        first = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
        total += (first[0].numel() if first is not None else 0) + (out[0].numel() if isinstance(out, torch.Tensor) else 0)

    _one_image(model, x, [m.register_forward_hook(leaf) for m in model.modules() if not list(m.children())])
    return 3 * total * bytes_per_value
