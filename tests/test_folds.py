import numpy as np
import pandas as pd
import pytest

from mask_cls import labels as L
from mask_cls.data.folds import assign_folds, split
from mask_cls.errors import ConfigError


def _table(n_persons=300, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_persons):
        g = int(rng.random() < 0.61)
        age = 60 if rng.random() < 0.07 else int(rng.integers(18, 60))
        for m in range(7):
            rows.append((f"{i:06d}_p", f"{i:06d}", f"/x/{i}/{m}.jpg", min(m, 2), g, age))
    return pd.DataFrame(rows, columns=["person", "id", "image", "mask", "gender", "age"])


def test_no_person_on_both_sides_and_each_person_validated_once():
    t = _table()
    val_count = {}
    for k in range(5):
        tr, va = split(t, 5, k, seed=1)
        assert not set(tr.person) & set(va.person)
        assert len(tr) + len(va) == len(t)
        for p in set(va.person):
            val_count[p] = val_count.get(p, 0) + 1
    assert set(val_count) == set(t.person) and set(val_count.values()) == {1}


def test_seven_images_of_a_person_share_a_fold():
    t = _table()
    folds = assign_folds(t, 5, seed=0)
    assert (t.assign(f=folds).groupby("person").f.nunique() == 1).all()


def test_stratified_on_gender_and_age():
    t = _table(1000)
    folds = assign_folds(t, 5, seed=0)
    persons = t.assign(f=folds).groupby("person").first()
    strata = persons.gender * 3 + L.age_group(persons.age.to_numpy())
    overall = strata.value_counts(normalize=True)
    for k in range(5):
        share = strata[persons.f == k].value_counts(normalize=True)
        for s, p in overall.items():
            assert abs(share.get(s, 0) - p) < 0.02


def test_deterministic_and_seed_dependent():
    t = _table()
    a, b, c = assign_folds(t, 5, 7), assign_folds(t, 5, 7), assign_folds(t, 5, 8)
    assert a.equals(b)
    assert not a.equals(c)


def test_bad_fold_settings():
    t = _table(20)
    with pytest.raises(ConfigError, match="data.fold=5"):
        split(t, 5, 5, 0)
    with pytest.raises(ConfigError, match="data.n_folds=1"):
        assign_folds(t, 1, 0)
