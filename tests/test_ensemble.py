import itertools

import numpy as np
import pandas as pd
import pytest
import torch

from mask_cls import labels as L
from mask_cls.errors import ConfigError
from mask_cls.evaluation.suspects import PROB_COLUMNS, find_suspects
from mask_cls.inference.ensemble import hard_vote, soft_vote
from mask_cls.inference.tta import VIEWS, check_views, tta_probs


def _fake_models(n=20, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.dirichlet(np.ones(18), size=n) for _ in range(k)]


def test_soft_vote_is_the_mean_and_order_free():
    probs = _fake_models()
    expected = (probs[0] + probs[1] + probs[2]) / 3
    for perm in itertools.permutations(range(3)):
        np.testing.assert_allclose(soft_vote([probs[i] for i in perm]), expected, atol=1e-12)


def test_soft_vote_weights_and_accumulation():
    a, b = np.zeros((2, 18)), np.zeros((2, 18))
    a[:, 0], b[:, 1] = 1.0, 1.0
    out = soft_vote([a, b], weights=[3, 1])
    np.testing.assert_allclose(out[:, :2], [[0.75, 0.25]] * 2)
    # the last model must not overwrite the others
    assert soft_vote([a, a, b])[0, 0] == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        soft_vote([a, b], weights=[1])


def test_hard_vote_majority_with_probability_tie_break():
    def one_hot(cls, conf):
        p = np.full((1, 18), (1 - conf) / 17)
        p[0, cls] = conf
        return p

    votes = hard_vote([one_hot(3, 0.4), one_hot(3, 0.4), one_hot(5, 0.99)])
    assert votes.argmax() == 3  # two votes beat one confident model
    tie = hard_vote([one_hot(3, 0.4), one_hot(5, 0.9)])
    assert tie.argmax() == 5  # tie broken by the mean probability


def test_hflip_flips_the_width_axis():
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).view(2, 3, 4, 6)  # H=4, W=6
    assert torch.equal(VIEWS["hflip"](x), x[..., torch.arange(5, -1, -1)])
    seen = []

    def model(v):
        seen.append(v.clone())
        return torch.full((2, 18), float(len(seen)))

    out = tta_probs(model, x, ["none", "hflip"])
    assert torch.equal(seen[0], x) and torch.equal(seen[1], x.flip(3))
    assert torch.allclose(out, torch.full((2, 18), 1.5))
    with pytest.raises(ConfigError, match="unknown view"):
        check_views(["vflip2"])


def _oof(persons=6):
    rows, probs = [], []
    for i in range(persons):
        g, a = i % 2, i % 3
        for stem, m in L.MASK_FILES.items():
            y = L.encode(m, g, a)
            p = np.full(18, 0.02 / 17)
            p[y] = 0.98
            rows.append((f"{i:06d}_p", f"/d/{i}/{stem}.jpg", y))
            probs.append(p)
    df = pd.DataFrame(rows, columns=["person", "image", "label"])
    return pd.concat([df, pd.DataFrame(np.array(probs), columns=PROB_COLUMNS)], axis=1)


def test_suspects_find_planted_label_errors():
    oof = _oof()
    assert find_suspects(oof).empty  # predictions agree with labels
    # person 2 is labeled male but the models say female on 6 of 7 images
    idx = oof.index[oof.person == "000002_p"]
    for i in idx[:6]:
        m, g, a = L.decode(int(oof.label[i]))
        p = np.full(18, 0.01 / 17)
        p[L.encode(m, 1 - g, a)] = 0.99
        oof.loc[i, PROB_COLUMNS] = p
    # person 4's incorrect_mask and normal files are swapped
    for stem, other in (("incorrect_mask", 2), ("normal", 1)):
        i = oof.index[(oof.person == "000004_p") & oof.image.str.endswith(f"/{stem}.jpg")][0]
        m, g, a = L.decode(int(oof.label[i]))
        p = np.full(18, 0.01 / 17)
        p[L.encode(other, g, a)] = 0.99
        oof.loc[i, PROB_COLUMNS] = p
    s = find_suspects(oof)
    assert set(zip(s.person, s.task)) == {("000002_p", "gender"), ("000004_p", "mask")}
    row = s[s.task == "gender"].iloc[0]
    assert row.labeled == "male" and row.predicted == "female" and row.share == pytest.approx(6 / 7, abs=1e-3)
    assert set(s[s.task == "mask"].iloc[0].images.split(";")) == {"incorrect_mask.jpg", "normal.jpg"}
