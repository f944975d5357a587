import itertools

import numpy as np
import pytest

from mask_cls import labels as L


def test_encode_decode_all_18_both_ways():
    seen = set()
    for m, g, a in itertools.product(range(3), range(2), range(3)):
        y = L.encode(m, g, a)
        assert L.decode(y) == (m, g, a)
        seen.add(y)
    assert seen == set(range(18))
    # the competition's table: wear/male/<30 = 0, incorrect/female/30-59 = 10, not-wear/female/>=60 = 17
    assert L.encode(0, 0, 0) == 0 and L.encode(1, 1, 1) == 10 and L.encode(2, 1, 2) == 17


def test_vectorised_roundtrip():
    y = np.arange(18)
    m, g, a = L.decode(y)
    assert np.array_equal(L.encode(m, g, a), y)


@pytest.mark.parametrize("age,group", [(18, 0), (29, 0), (30, 1), (59, 1), (60, 2), (75, 2)])
def test_true_age_bins(age, group):
    assert L.age_group(age) == group


def test_threshold_moves_only_upper_edge():
    assert L.age_group(58, old_from=58) == 2 and L.age_group(57, old_from=58) == 1
    assert L.age_group(29, old_from=58) == 0


def test_decode_rejects_out_of_range():
    with pytest.raises(ValueError):
        L.decode(18)


def test_mask_files_and_names():
    assert sorted(L.MASK_FILES.values()).count(0) == 5
    assert L.MASK_FILES["incorrect_mask"] == 1 and L.MASK_FILES["normal"] == 2
    assert L.class_name(17) == "not_wear/female/>=60"


def test_task_probs_are_the_marginals_of_the_encoding():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(18), size=5)
    for task, names in (("mask", L.MASK_NAMES), ("gender", L.GENDER_NAMES), ("age", L.AGE_NAMES)):
        ref = np.zeros((5, len(names)))
        for c in range(18):
            ref[:, L.target(task, np.array(c))] += probs[:, c]
        np.testing.assert_allclose(L.task_probs(probs, task), ref, atol=1e-12)
