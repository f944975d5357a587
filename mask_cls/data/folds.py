"""Person-level stratified K-fold: a person's seven images always fall in the same fold.

Stratified on gender x age group at the person level (every image of a person shares both),
which is exactly a stratified group K-fold with the person folder as the group.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from mask_cls import labels as L
from mask_cls.errors import ConfigError


def assign_folds(table: pd.DataFrame, n_folds: int, seed: int) -> pd.Series:
    """A fold number (0..n_folds-1) for every image row of ``table``, keyed by its person."""
    if n_folds < 2:
        raise ConfigError(f"data.n_folds={n_folds}: need at least 2 folds")
    persons = table.groupby("person", sort=True).agg(gender=("gender", "first"), age=("age", "first"))
    if len(persons) < n_folds:
        raise ConfigError(f"data.n_folds={n_folds}: only {len(persons)} persons in the training set")
    strata = persons["gender"].to_numpy() * 3 + L.age_group(persons["age"].to_numpy())
    # Strata smaller than n_folds cannot be spread; merge them into their gender's largest one.
    counts = pd.Series(strata).value_counts()
    for s in counts.index[counts < n_folds]:
        g = s // 3
        same_gender = counts[(counts.index // 3 == g) & (counts >= n_folds)]
        strata[strata == s] = same_gender.idxmax() if len(same_gender) else counts.idxmax()
    skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    fold_of = np.empty(len(persons), dtype=int)
    for k, (_, val_idx) in enumerate(skf.split(np.zeros(len(persons)), strata)):
        fold_of[val_idx] = k
    mapping = pd.Series(fold_of, index=persons.index)
    return table["person"].map(mapping).astype(int).rename("fold")


def split(table: pd.DataFrame, n_folds: int, fold: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train rows, validation rows) for one fold."""
    if not 0 <= fold < n_folds:
        raise ConfigError(f"data.fold={fold}: must be in 0..{n_folds - 1} for data.n_folds={n_folds}")
    folds = assign_folds(table, n_folds, seed)
    return table[folds != fold].reset_index(drop=True), table[folds == fold].reset_index(drop=True)
