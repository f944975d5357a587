"""Suspect labels from out-of-fold predictions: persons whose images the models confidently
assign to another gender or age group (person-level labels), and images whose mask state is
confidently another (swapped files). Ready to review and turn into a relabel file."""

from __future__ import annotations

import pandas as pd

from mask_cls import labels as L

PROB_COLUMNS = L.PROB_COLUMNS
NAMES = {"mask": L.MASK_NAMES, "gender": L.GENDER_NAMES, "age": L.AGE_NAMES}


def find_suspects(oof: pd.DataFrame, threshold: float = 0.8, min_share: float = 0.5) -> pd.DataFrame:
    """One row per (person, task) whose labels the out-of-fold predictions contradict.

    gender / age: at least ``min_share`` of the person's images predicted as one other class
    with probability >= ``threshold``. mask: any image predicted as another mask state with
    probability >= ``threshold``.
    """
    probs = oof[PROB_COLUMNS].to_numpy()
    rows = []
    for task in ("gender", "age", "mask"):
        p = L.task_probs(probs, task)
        pred, conf = p.argmax(1), p.max(1)
        true = L.target(task, oof["label"].to_numpy())
        wrong = (pred != true) & (conf >= threshold)
        df = pd.DataFrame({"person": oof["person"].to_numpy(), "true": true, "pred": pred, "conf": conf,
                           "wrong": wrong, "image": oof["image"].map(lambda s: s.rsplit("/", 1)[-1]).to_numpy()})
        for person, g in df.groupby("person", sort=True):
            w = g[g.wrong]
            if w.empty:
                continue
            share = len(w) / len(g)
            if task != "mask" and share < min_share:
                continue
            predicted = int(w["pred"].mode().iloc[0])
            rows.append({"person": person, "task": task, "labeled": NAMES[task][int(w["true"].iloc[0])],
                         "predicted": NAMES[task][predicted], "share": round(share, 3),
                         "confidence": round(float(w["conf"].mean()), 4), "images": ";".join(w["image"])})
    cols = ["person", "task", "labeled", "predicted", "share", "confidence", "images"]
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values(["confidence", "share"], ascending=False).reset_index(drop=True)
