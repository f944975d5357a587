"""Batch-level augmentation on the device, after normalisation:

- vertical half CutMix: the left ``c`` columns from one image, the rest from a partner
  (optionally a partner of the oldest age group); ``lam = c / W`` and the loss is
  ``lam * L(y1) + (1 - lam) * L(y2)`` for any criterion;
- grid shuffle: the tiles of a g x g grid permuted, only for images of the chosen mask states
  (default no-mask, where the layout of the face does not decide the label).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from mask_cls import labels as L


def vertical_cutmix(x: torch.Tensor, y: torch.Tensor, ratio: Sequence[float] = (0.4, 0.6), pair_old: bool = False,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(mixed images, partner index of each row, lam = share of columns from the first image).

    The partner's label (and sample weight) is read with the index: ``y[partner]``."""
    n, w = x.shape[0], x.shape[-1]
    partner = torch.randperm(n, generator=generator).to(x.device)
    if pair_old:
        old = torch.nonzero(L.target("age", y) == 2).flatten()
        if len(old):
            pick = torch.randint(len(old), (n,), generator=generator).to(x.device)
            partner = old[pick]
    u = float(torch.empty(1).uniform_(ratio[0], ratio[1], generator=generator))
    c = max(1, min(w - 1, round(w * u)))
    mixed = x.clone()
    mixed[..., c:] = x[partner][..., c:]
    return mixed, partner, c / w


def grid_shuffle(x: torch.Tensor, y: torch.Tensor, grid: int = 2, mask_states: Sequence[int] = (2,),
                 p: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Tiles permuted (one permutation per image) for images whose mask state is chosen."""
    out = x.clone()
    h, w = x.shape[-2] // grid * grid, x.shape[-1] // grid * grid
    th, tw = h // grid, w // grid
    chosen = torch.isin(L.target("mask", y), torch.as_tensor(list(mask_states), device=y.device))
    for i in torch.nonzero(chosen).flatten().tolist():
        if float(torch.rand(1, generator=generator)) >= p:
            continue
        tiles = [x[i, :, r * th:(r + 1) * th, c * tw:(c + 1) * tw] for r in range(grid) for c in range(grid)]
        order = torch.randperm(len(tiles), generator=generator).tolist()
        for k, j in enumerate(order):
            r, c = divmod(k, grid)
            out[i, :, r * th:(r + 1) * th, c * tw:(c + 1) * tw] = tiles[j]
    return out


class BatchAugment:
    """``augment.batch`` config -> a callable on (x, y) returning (x, partner, lam); partner
    (the row each image's right part came from) is None unless CutMix ran."""

    def __init__(self, cfg: Mapping | None):
        cfg = dict(cfg or {})
        self.cutmix = dict(cfg.get("cutmix") or {})
        self.grid = dict(cfg.get("grid_shuffle") or {})

    def __call__(self, x: torch.Tensor, y: torch.Tensor):
        if self.grid:
            x = grid_shuffle(x, y, self.grid.get("grid", 2), self.grid.get("mask_states", (2,)), self.grid.get("p", 0.5))
        if self.cutmix and float(torch.rand(1)) < self.cutmix.get("p", 0.5):
            x, partner, lam = vertical_cutmix(x, y, self.cutmix.get("ratio", (0.4, 0.6)),
                                              self.cutmix.get("pair_old", False))
            return x, partner, lam
        return x, None, 1.0
