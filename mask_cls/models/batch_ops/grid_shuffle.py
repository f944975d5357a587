"""Grid shuffle: the tiles of a g x g grid permuted, only for images of the chosen mask states
(default no-mask, where the layout of the face does not decide the label)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mask_cls import labels as L
from mask_cls.models.batch_ops.base import BatchOp


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


class GridShuffle(BatchOp):
    key, order = "grid_shuffle", 0

    def __call__(self, x: torch.Tensor, y: torch.Tensor):
        return grid_shuffle(x, y, self.cfg.get("grid", 2), self.cfg.get("mask_states", (2,)), self.cfg.get("p", 0.5)), None, 1.0
