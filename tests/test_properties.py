"""Property tests of the pure functions whose input users control: the folder layout's labels
and persons, file sameness and dedupe, soft-target joining, task=compare's differing keys, the
progress arithmetic and the calibration error. Each runs in-process, a few seconds at most."""

from __future__ import annotations

import itertools
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mask_cls import labels as L

_counter = itertools.count()


def _fresh(tmp_path_factory) -> Path:
    """A new folder per hypothesis example (function-scoped fixtures are shared across examples)."""
    folder = tmp_path_factory.getbasetemp() / "props" / str(next(_counter))
    folder.mkdir(parents=True)
    return folder


def _png(path: Path, seed: int) -> Path:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.random.default_rng(seed).integers(0, 255, (8, 6, 3), dtype=np.uint8)
    cv2.imwrite(str(path), img)
    return path


# -- the folder layout: class folder names and indexes, persons from file names ----------------------

_spelling = st.sampled_from(["index", "padded", "name"])
_person = st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,6}", fullmatch=True).filter(
    lambda s: "__" not in s and not s.endswith("_")))
_image = st.tuples(st.integers(0, L.NUM_CLASSES - 1), _spelling, _person, st.from_regex(r"[a-z0-9]{1,6}", fullmatch=True),
                   st.booleans())


def _class_folder(c: int, spelling: str) -> str:
    return {"index": str(c), "padded": f"{c:02d}", "name": L.folder_name(c)}[spelling]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(images=st.lists(_image, min_size=1, max_size=12))
def test_the_folder_layout_reads_every_class_spelling_and_person(tmp_path_factory, images):
    from mask_cls.data.layouts.folder import rows

    root = _fresh(tmp_path_factory)
    want = {}
    for i, (c, spelling, person, name, nested) in enumerate(images):
        folder = root / _class_folder(c, spelling) / ("sub" if nested else "")
        stem = f"{person}__{name}{i}" if person else f"{name}{i}"  # the same name may stand in several classes
        path = folder / f"{stem}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        want[str(path)] = (person or f"image:{path.relative_to(root)}", c)
    found, other, anonymous = rows(root)
    assert {image: (person, c) for person, image, c in found} == want
    assert other == [] and anonymous == sum(1 for _, _, p, _, _ in images if p is None)


def test_the_same_file_name_in_two_class_folders_is_two_images_of_one_person(tmp_path):
    from mask_cls.data.layouts.folder import read_train

    for c in (0, 7):
        _png(tmp_path / _class_folder(c, "name") / "p1__mask.png", c)
    table = read_train(tmp_path)
    assert sorted(table["label"]) == [0, 7] and set(table["person"]) == {"p1"}


# -- sameness of files: same path, hard link, symbolic link, byte copy, padded copy -------------------

@pytest.mark.parametrize("kind, same, repeat", [("same path", True, True), ("hard link", True, True),
                                                ("symlink", True, True), ("byte copy", True, False),
                                                ("padded copy", True, False), ("other image", False, False)])
def test_sameness_and_dedupe_by_kind(tmp_path, kind, same, repeat):
    from mask_cls.data.pseudo import among, unique_files

    original = _png(tmp_path / "a.png", 1)
    alias = tmp_path / "b.png"
    if kind == "same path":
        alias = original
    elif kind == "hard link":
        os.link(original, alias)
    elif kind == "symlink":
        alias.symlink_to(original)
    elif kind == "byte copy":
        shutil.copy(original, alias)
    elif kind == "padded copy":
        alias.write_bytes(original.read_bytes() + b"\0\0")
    else:
        _png(alias, 2)
    assert bool(among(pd.Series([str(alias)]), pd.Series([str(original)])).iloc[0]) == same
    # dedupe of listed rows is by file (inode): a copy is another file, a link the same one
    assert list(unique_files(pd.Series([str(original), str(alias)]))) == [True, not repeat]


# -- soft-target joining: any order, repeated rows, a missing image ---------------------------------

@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(range(6)), repeats=st.lists(st.integers(0, 5), max_size=4), drop=st.booleans())
def test_soft_targets_join_by_file_in_any_order(tmp_path_factory, order, repeats, drop):
    from mask_cls.data.soft_targets import attach
    from mask_cls.errors import DataError

    folder = _fresh(tmp_path_factory)
    images = [str(_png(folder / f"t{i}.png", 10 + i)) for i in range(4)] + \
        [str(_png(folder / f"u{i}.png", 20 + i)) for i in range(2)]  # 4 labeled, 2 unlabeled
    val = pd.DataFrame({"image": [str(_png(folder / "v.png", 99))]})
    train = pd.DataFrame({"person": [f"p{i}" for i in range(4)], "image": images[:4], "label": [0, 1, 2, 3]})
    probs = np.random.default_rng(len(order)).dirichlet(np.ones(L.NUM_CLASSES), size=6).astype(np.float32)
    idx = [i for i in order if not (drop and i == 0)] + repeats
    soft = pd.DataFrame(probs[idx], columns=L.PROB_COLUMNS)
    soft.insert(0, "image", [images[i] for i in idx])
    if drop and 0 not in repeats:
        with pytest.raises(DataError, match="1 labeled training image"):
            attach(train, val, soft, "soft.csv")
        return
    merged, summary = attach(train, val, soft, "soft.csv")
    assert summary == {"labeled": 4, "unlabeled": 2}
    for _, row in merged.iterrows():
        np.testing.assert_allclose(row[L.PROB_COLUMNS].to_numpy(dtype=float), probs[images.index(row["image"])], atol=1e-6)
    assert list(merged["label"][:4]) == [0, 1, 2, 3] and (merged["label"][4:] == -1).all()


# -- task=compare: runs with disjoint keys, nested lists ----------------------------------------------

_leaf = st.one_of(st.integers(-3, 3), st.text(max_size=3), st.lists(st.integers(0, 2), max_size=2), st.none())
_config = st.dictionaries(st.sampled_from(["a", "b", "c"]), st.one_of(_leaf, st.dictionaries(
    st.sampled_from(["x", "y"]), _leaf, max_size=2)), max_size=3)


@settings(max_examples=200, deadline=None)
@given(configs=st.lists(_config.filter(bool), min_size=2, max_size=4))
def test_compare_lists_a_key_exactly_when_some_run_differs_or_lacks_it(configs):
    from mask_cls.tasks.compare import MISSING, differing, flatten

    flat = [flatten(c) for c in configs]
    keys = set().union(*flat)
    want = sorted(k for k in keys if len({json.dumps(f.get(k, MISSING), sort_keys=True) for f in flat}) > 1)
    assert differing(flat) == want
    for f, c in zip(flat, configs):  # flatten keeps every leaf reachable by its dotted key
        for key, value in f.items():
            node = c
            for part in key.split("."):
                node = node[part]
            assert node == value


# -- progress lines: the time left against a known clock -----------------------------------------------

@settings(max_examples=30, deadline=None)
@given(total=st.integers(1, 40), step=st.floats(0.1, 100))
def test_progress_lines_say_the_time_left_not_the_time_spent(total, step):
    import logging

    from mask_cls import progress

    clock = {"t": 1000.0}
    lines: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    handler = Catch()
    logger = logging.getLogger("mask_cls")
    logger.addHandler(handler)
    old_level, old_mode, old_every = logger.level, progress.style(), progress.every_s()
    logger.setLevel(logging.INFO)
    real = progress.time.monotonic
    progress.time.monotonic = lambda: clock["t"]
    try:
        progress.configure("lines", 0.0)
        for _ in progress.track(range(total), total, "work", "img"):
            clock["t"] += step
    finally:
        progress.time.monotonic = real
        progress.configure(old_mode, old_every)
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert len(lines) == total  # every_s = 0: a line per item
    for done, line in enumerate(lines, 1):
        left = (total - done) * step
        assert line.startswith(f"work: {done}/{total} img ({100 * done // total}%)")
        shown = {progress.duration(left - 1e-6), progress.duration(left + 1e-6)}  # rounding of the float clock
        assert any(line.endswith(f"{d} left") for d in shown), (line, left)


# -- the calibration error against an independent loop -------------------------------------------------

@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 60), sharp=st.floats(0.1, 8))
def test_ece_and_nll_against_a_reference(seed, n, sharp):
    import torch

    from mask_cls.evaluation.calibration import expected_calibration_error
    from mask_cls.evaluation.temperature import nll

    rng = np.random.default_rng(seed)
    z = rng.normal(0, sharp, (n, L.NUM_CLASSES))
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = rng.integers(0, L.NUM_CLASSES, n)
    ref = 0.0
    for b in range(10):  # bins (b/10, (b+1)/10]; a confidence of 0 goes to the first
        lo, hi = b / 10, (b + 1) / 10
        m = np.array([(lo < c <= hi) or (b == 0 and c == 0) for c in p.max(1)])
        if m.any():
            ref += m.sum() / n * abs((p.argmax(1)[m] == y[m]).mean() - p.max(1)[m].mean())
    assert expected_calibration_error(y, p) == pytest.approx(ref, abs=1e-9)
    torch_nll = torch.nn.functional.nll_loss(torch.log(torch.tensor(p).clamp_min(1e-12)), torch.tensor(y)).item()
    assert nll(p, y) == pytest.approx(torch_nll, rel=1e-6)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), true_t=st.floats(0.3, 5.0), views=st.integers(1, 2))
def test_the_fitted_temperature_is_the_nll_minimum_a_reference_finds(seed, true_t, views):
    """On random logits (one or two TTA views), the temperature ``fit`` finds is where a bounded
    scalar search of the same negative log-likelihood finds its minimum."""
    import torch
    from scipy.optimize import minimize_scalar

    from mask_cls.evaluation.temperature import fit, nll, probs
    from mask_cls.models.heads.linear import LinearHead

    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2, (300, L.NUM_CLASSES))
    p = np.exp(z - z.max(1, keepdims=True))
    y = np.array([rng.choice(L.NUM_CLASSES, p=row / row.sum()) for row in p])
    logits = torch.tensor(np.stack([true_t * z + rng.normal(0, 0.1, z.shape) for _ in range(views)]), dtype=torch.float32)
    head = LinearHead(in_features=8)

    def loss(log_t: float) -> float:
        return nll(probs(head, [logits], [float(np.exp(log_t))]).numpy(), y)

    ref = float(np.exp(minimize_scalar(loss, bounds=(np.log(0.05), np.log(50)), method="bounded",
                                       options={"xatol": 1e-6}).x))
    (found,) = fit(head, [logits], y)
    assert found == pytest.approx(ref, rel=2e-2)
    assert loss(np.log(found)) <= loss(np.log(ref)) + 1e-4
