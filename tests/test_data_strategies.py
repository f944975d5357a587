"""Samplers, age threshold, label fixes and the image cache."""

import os
import time

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chisquare

from mask_cls import labels as L
from mask_cls.data.cache import ImageCache
from mask_cls.data.datamodule import MaskDataModule
from mask_cls.data.datasets import read_rgb
from mask_cls.data.layouts.competition.tables import read_train
from mask_cls.data.relabel import apply_fixes, read_fixes
from mask_cls.data.samplers import person_balanced, person_repeats, sqrt, weighted
from mask_cls.errors import DataError


def _table(seed=0, n=200):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        g, age = int(rng.random() < 0.6), int(rng.choice([20, 40, 60], p=[0.5, 0.42, 0.08]))
        for stem, m in L.MASK_FILES.items():
            rows.append((f"p{i}", f"{i:06d}", f"/x/{i}/{stem}.jpg", m, g, age, L.encode(m, g, L.age_group(age))))
    return pd.DataFrame(rows, columns=["person", "id", "image", "mask", "gender", "age", "label"])


@pytest.mark.parametrize("factory,power", [(weighted, 1.0), (sqrt, 0.5)])
def test_weighted_samplers_draw_by_their_definition(factory, power):
    t = _table()
    draws = np.array(list(factory(t, epoch_length=60000, seed=1)))
    counts = t.label.value_counts().sort_index()
    # expected share of class c: n_c * n_c^-power / sum(...)
    mass = counts.to_numpy() ** (1 - power)
    observed = np.bincount(t.label.to_numpy()[draws], minlength=18)[counts.index]
    assert chisquare(observed, mass / mass.sum() * len(draws)).pvalue > 0.001


def test_person_balanced_repeats_whole_persons():
    t = _table()
    reps = person_repeats(t, max_repeat=4)
    sampler = person_balanced(t, max_repeat=4, seed=0)
    drawn = pd.Series(t.person.to_numpy()[list(sampler)]).value_counts()
    assert (drawn == drawn.index.map(reps) * 7).all()  # every image of a person, r times
    persons = t.groupby("person").first()
    group = persons.gender * 3 + L.age_group(persons.age.to_numpy())
    size = group.value_counts()
    rare, common = size.idxmin(), size.idxmax()
    assert reps[group == common].eq(1).all()
    assert reps[group == rare].eq(min(4, round(size.max() / size.min()))).all()
    assert len(person_balanced(t, epoch_length=100, seed=0)) == 100


def test_age_threshold_changes_training_labels_only(tiny_root):
    base = MaskDataModule.from_flat(str(tiny_root), image_size=[64, 48], n_folds=3, num_workers=0)
    base.setup("fit")
    dm = MaskDataModule.from_flat(str(tiny_root), image_size=[64, 48], n_folds=3, num_workers=0, age_threshold=50)
    dm.setup("fit")
    assert dm.val_table.equals(base.val_table)
    assert (dm.val_table.label == L.encode(dm.val_table["mask"], dm.val_table.gender, L.age_group(dm.val_table.age))).all()
    moved = dm.train_table.age.between(50, 59)
    assert moved.any()
    assert (L.target("age", dm.train_table.label[moved]) == 2).all()
    assert (dm.train_table.label[~moved] == base.train_table.label[~moved]).all()


def test_drop_ages_leaves_validation_alone(tiny_root):
    base = MaskDataModule.from_flat(str(tiny_root), image_size=[64, 48], n_folds=3, num_workers=0)
    base.setup("fit")
    ages = sorted(base.train_table.age.unique())[:2]
    dm = MaskDataModule.from_flat(str(tiny_root), image_size=[64, 48], n_folds=3, num_workers=0, drop_ages=ages)
    dm.setup("fit")
    assert not dm.train_table.age.isin(ages).any() and dm.val_table.equals(base.val_table)


def test_relabel_sets_values_and_is_idempotent(tiny_root, tmp_path, caplog):
    table = read_train(tiny_root)
    person = table.person.iloc[0]
    pid = table.id.iloc[0]
    gender = L.GENDER_NAMES[1 - int(table.gender.iloc[0])]
    fixes = tmp_path / "fix.csv"
    fixes.write_text(f"key,field,value\n{person},gender,{gender}\n{pid},mask:normal,incorrect\n"
                     f"{pid},mask:incorrect_mask,not_wear\n999999,age,40\n")
    once = apply_fixes(table, str(fixes))
    twice = apply_fixes(once, str(fixes))
    assert once.equals(twice)  # setting, not flipping
    mine = once[once.person == person]
    assert (mine.gender == L.GENDER_CODES[gender]).all()
    stems = mine.image.str.rsplit("/", n=1).str[1].str.split(".").str[0]
    assert (mine["mask"][stems == "normal"] == 1).all() and (mine["mask"][stems == "incorrect_mask"] == 2).all()
    assert (once.label == L.encode(once["mask"], once.gender, L.age_group(once.age))).all()
    assert "999999" in caplog.text  # unknown keys: a warning, not a crash
    others = once.person != person
    assert once[others].equals(table[others])


def test_shipped_competition_fixes_and_bad_rows(tmp_path):
    fixes = read_fixes("competition")
    assert set(fixes.key[fixes.field == "gender"]) >= {"006359", "006364", "001498-1", "004432"}
    bad = tmp_path / "bad.csv"
    bad.write_text("key,field,value\n000001,gender,robot\n")
    with pytest.raises(DataError, match=r"bad\.csv:2: cannot set gender='robot'"):
        read_fixes(str(bad))
    # comments before the header and between rows: skipped, line numbers still the file's
    bad.write_text("# fixes\nkey,field,value\n# a note\n000001,gender,male\n\n000002,age,old\n")
    with pytest.raises(DataError, match=r"bad\.csv:6: cannot set age='old'"):
        read_fixes(str(bad))


def _persons(*folders: str) -> pd.DataFrame:
    """An image table of persons ``ID_GENDER_RACE_AGE``, each with a normal and an incorrect_mask image."""
    rows = []
    for folder in folders:
        pid, gender, _, age = folder.split("_")
        for stem, mask in (("normal", 2), ("incorrect_mask", 1)):
            rows.append({"person": folder, "id": pid, "image": f"train/images/{folder}/{stem}.jpg",
                         "gender": L.GENDER_CODES[gender], "age": int(age), "mask": mask})
    t = pd.DataFrame(rows)
    t["label"] = L.encode(t["mask"], t.gender, L.age_group(t.age))
    return t


def test_shipped_fixes_touch_only_the_person_they_were_written_for(caplog):
    # the real person reads female (the known error); another layout's 006359 is a man already and
    # another's 000020 has two folders: both are left alone, and the log says why
    real = _persons("006359_female_Asian_30", "000021_male_Asian_40")
    fixed = apply_fixes(real, "competition")
    assert (fixed.gender[fixed.id == "006359"] == L.GENDER_CODES["male"]).all()
    assert fixed[fixed.id == "000021"].equals(real[real.id == "000021"])
    other = _persons("006359_male_Asian_44", "000020_female_Asian_50", "000020_male_Asian_25")
    with caplog.at_level("WARNING"):
        assert apply_fixes(other, "competition").equals(other)
    assert "006359 (gender is not female)" in caplog.text and "000020 (ambiguous: 2 person folders)" in caplog.text
    # a mask swap applies once: on the fixed table the files no longer read what the fix expects
    swap = _persons("000020_female_Asian_50")
    once = apply_fixes(swap, "competition")
    assert once["mask"].tolist() == [1, 2] and apply_fixes(once, "competition").equals(once)


def test_cache_same_pixels_rebuilds_stale_and_corrupt(tiny_copy, tmp_path):
    import cv2

    path = str(next((tiny_copy / "train" / "images").rglob("mask1.*")))
    cache = ImageCache(tmp_path / "cache", (40, 30))
    direct = cv2.resize(read_rgb(path), (30, 40), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(cache.get(path), direct) and cache.misses == 1
    assert np.array_equal(cache.get(path), direct) and cache.hits == 1
    # the file changes: a new key, decoded again
    img = cv2.imread(path)
    cv2.imwrite(path, 255 - img)
    os.utime(path, (time.time() + 5, time.time() + 5))
    changed = cv2.resize(read_rgb(path), (30, 40), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(cache.get(path), changed) and cache.misses == 2
    # a corrupt entry is detected and rebuilt
    cache.key(path).write_bytes(b"garbage")
    assert np.array_equal(cache.get(path), changed) and cache.misses == 3
    assert np.array_equal(np.load(cache.key(path)), changed)
