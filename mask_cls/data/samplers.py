"""Training samplers (``sampler=``): each is a factory taking the training table.

- shuffle: a plain random permutation
- weighted / sqrt: draws with replacement, image weight 1/n_c or 1/sqrt(n_c) of its class
- person_balanced: whole persons of rare gender x age groups repeated (up to ``max_repeat``)
``epoch_length``: images per epoch (default: the training set's size).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Sampler, WeightedRandomSampler

from mask_cls import labels as L


def class_weighted(table: pd.DataFrame, power: float = 1.0, epoch_length: int | None = None,
                   seed: int | None = None) -> WeightedRandomSampler:
    counts = table["label"].value_counts()
    w = 1.0 / table["label"].map(counts).to_numpy(dtype=np.float64) ** power
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    weights: Any = torch.as_tensor(w)  # torch takes a tensor (its stubs say a sequence)
    return WeightedRandomSampler(weights, num_samples=epoch_length or len(table), replacement=True, generator=g)


def person_repeats(table: pd.DataFrame, max_repeat: int = 4) -> pd.Series:
    """Repeat count per person: round(largest group / own group), capped."""
    persons = table.groupby("person").agg(gender=("gender", "first"), age=("age", "first"))
    group = persons["gender"] * 3 + L.age_group(persons["age"].to_numpy())
    size = group.map(group.value_counts())
    return np.minimum(np.maximum(np.round(size.max() / size), 1), max_repeat).astype(int)


class PersonBalancedSampler(Sampler[int]):
    """Every image of a person ``r`` times per epoch (r from its group's rarity), shuffled."""

    def __init__(self, table: pd.DataFrame, max_repeat: int = 4, epoch_length: int | None = None,
                 seed: int | None = None):
        reps = person_repeats(table, max_repeat)
        self.indices = np.repeat(np.arange(len(table)), table["person"].map(reps).to_numpy())
        self.length = epoch_length or len(self.indices)
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.length

    def __iter__(self):
        order = self.rng.permutation(self.indices)
        while len(order) < self.length:
            order = np.concatenate([order, self.rng.permutation(self.indices)])
        return iter(order[: self.length].tolist())


def shuffle(table: pd.DataFrame, **_) -> None:
    """None: the DataLoader shuffles."""
    return None


def weighted(table: pd.DataFrame, epoch_length: int | None = None, seed: int | None = None):
    return class_weighted(table, 1.0, epoch_length, seed)


def sqrt(table: pd.DataFrame, epoch_length: int | None = None, seed: int | None = None):
    return class_weighted(table, 0.5, epoch_length, seed)


def person_balanced(table: pd.DataFrame, max_repeat: int = 4, epoch_length: int | None = None,
                    seed: int | None = None) -> PersonBalancedSampler:
    return PersonBalancedSampler(table, max_repeat, epoch_length, seed)
