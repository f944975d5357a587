"""The one place that knows the 18-class encoding: label = 6*mask + 3*gender + age_group.

mask: 0 wear, 1 incorrect, 2 not-wear; gender: 0 male, 1 female;
age_group: 0 (<30), 1 (30..59), 2 (>=60).
"""

from __future__ import annotations

import numpy as np

NUM_CLASSES = 18
MASK_NAMES = ("wear", "incorrect", "not_wear")
GENDER_NAMES = ("male", "female")
AGE_NAMES = ("<30", "30-59", ">=60")
SUBTASKS = {"mask": 3, "gender": 2, "age": 3}  # the three sub-tasks and their class counts

#: image file stem -> mask state, as in the competition folders
MASK_FILES: dict[str, int] = {
    "mask1": 0,
    "mask2": 0,
    "mask3": 0,
    "mask4": 0,
    "mask5": 0,
    "incorrect_mask": 1,
    "normal": 2,
}
GENDER_CODES = {name: i for i, name in enumerate(GENDER_NAMES)}
#: the true age bins; every reported metric uses these, whatever the training threshold
AGE_YOUNG_BELOW = 30
AGE_OLD_FROM = 60
MAX_AGE = 120  # ages above are data errors (the same rule for training and task=check)


def age_group(age, old_from: int = AGE_OLD_FROM):
    """Age -> 0/1/2. ``old_from`` moves only the upper edge (the training-time age threshold)."""
    a = np.asarray(age)
    out = np.where(a < AGE_YOUNG_BELOW, 0, np.where(a < old_from, 1, 2))
    return int(out) if out.ndim == 0 else out


def encode(mask, gender, age_grp):
    """(mask, gender, age_group) -> class index 0..17; works on scalars and arrays."""
    out = 6 * np.asarray(mask) + 3 * np.asarray(gender) + np.asarray(age_grp)
    return int(out) if out.ndim == 0 else out


def decode(label):
    """Class index -> (mask, gender, age_group); works on scalars and arrays."""
    y = np.asarray(label)
    if np.any((y < 0) | (y >= NUM_CLASSES)):
        raise ValueError(f"labels must be in 0..{NUM_CLASSES - 1}")
    m, g, a = y // 6, (y // 3) % 2, y % 3
    if y.ndim == 0:
        return int(m), int(g), int(a)
    return m, g, a


#: column names of the 18 class probabilities in oof.csv, probs.csv and predictions.csv
PROB_COLUMNS = [f"p{c}" for c in range(NUM_CLASSES)]


_MARGINAL_AXES = {"mask": (2, 3), "gender": (1, 3), "age": (1, 2)}  # of (N, mask, gender, age) to sum


def task_probs(probs: np.ndarray, task: str) -> np.ndarray:
    """(N, 18) -> (N, k) marginal probabilities of one sub-task (mask, gender or age)."""
    return np.asarray(probs).reshape(-1, len(MASK_NAMES), len(GENDER_NAMES), len(AGE_NAMES)).sum(
        axis=_MARGINAL_AXES[task])


def class_name(label: int) -> str:
    m, g, a = decode(label)
    return f"{MASK_NAMES[m]}/{GENDER_NAMES[g]}/{AGE_NAMES[a]}"


AGE_FOLDER_NAMES = ("under30", "30to59", "60plus")


def folder_name(label: int) -> str:
    """A class as a folder name (``data=folder``): ``wear_male_under30``, ``not_wear_female_60plus``."""
    m, g, a = (int(v) for v in decode(label))
    return f"{MASK_NAMES[m]}_{GENDER_NAMES[g]}_{AGE_FOLDER_NAMES[a]}"


FOLDER_CLASSES = {folder_name(c): c for c in range(NUM_CLASSES)}


#: what a head output predicts: name -> (number of classes, class index from the 18-class label)
TARGETS = {
    "class": (NUM_CLASSES, lambda y: y),
    "mask": (3, lambda y: y // 6),
    "gender": (2, lambda y: (y // 3) % 2),
    "age": (3, lambda y: y % 3),
}


def target(name: str, y):
    """The label of output ``name`` (class, mask, gender, age) from 18-class labels (numpy or torch)."""
    return TARGETS[name][1](y)


def target_counts(name: str, counts18) -> list[int]:
    """Per-class counts of output ``name`` from the 18 class counts."""
    k, fn = TARGETS[name]
    out = [0] * k
    for c, n in enumerate(counts18):
        out[int(fn(c))] += int(n)
    return out


def joint_probs(p_mask, p_gender, p_age):
    """(N,3), (N,2), (N,3) probabilities -> (N,18) in the encoding's order (6m + 3g + a).

    Works for torch tensors; the product of three distributions sums to 1.
    """
    joint = p_mask[:, :, None, None] * p_gender[:, None, :, None] * p_age[:, None, None, :]
    return joint.reshape(joint.shape[0], NUM_CLASSES)


def joint_log_probs(lp_mask, lp_gender, lp_age):
    """The log of ``joint_probs`` from log-probabilities, without underflow (a sum of logs)."""
    joint = lp_mask[:, :, None, None] + lp_gender[:, None, :, None] + lp_age[:, None, None, :]
    return joint.reshape(joint.shape[0], NUM_CLASSES)


def age_problem(age: str) -> str | None:
    """What is wrong with an age as written in a file (train.csv, a relabel file): the one rule,
    a whole number 0..120 in ASCII digits (``45`` or ``45.0``); None when it is fine."""
    shown = age if len(age) <= 20 else age[:20] + "..."
    if not age.isascii() or len(age) > 20:
        return f"age {shown!r} is not a number"
    try:
        value = float(age)
    except ValueError:
        return f"age {shown!r} is not a number"
    if not np.isfinite(value) or not 0 <= value <= MAX_AGE:
        return f"age {shown!r} is out of range 0..{MAX_AGE}"
    if value % 1:
        return f"age {shown!r} is not a whole number of years"
    return None
