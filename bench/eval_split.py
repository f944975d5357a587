"""Split REALFACES's eval persons once into a *selection* half and a *confirmation* half.

Choices (which arm, which threshold, which age cut) are made on the selection half's answers;
the headline figures are reported on the confirmation half, whose answers took no part in any
choice. The eval images carry no person id, so persons are found from the photos: the seven
images of a person share the unmasked upper face (eyes and forehead, above every painted mask)
and the gender x age class of the answer key, and exactly one of them is the ``normal`` photo.
Each masked image joins the normal photo whose upper face is nearest among those of its class;
two persons made from the same source photo (identical normal images) become one group, so a
photo never sits on both sides. Where the key's folder has ``eval_persons.csv`` (ImageID,person:
the synthetic set writes one), those persons are used instead. The halves are drawn by group with a fixed seed, stratified by
the gender x age class. A group with an eval image that shows a training photo (the same decoded pixels:
a copy, re-saved or with bytes added) is in neither half (``dropped``): a score on it is not held out.

    python bench/eval_split.py ROOT --answers KEY --out FILE.csv     # ImageID,person,half
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

HALVES = ("selection", "confirmation")
DROPPED = "dropped"  # a group with an eval image that shows a training photo: in neither half
SEED = 20261130  # fixed once: the split never moves with a benchmark's seeds


def upper_face(path: Path) -> np.ndarray:
    """The top 40% of the image (above every painted mask) as a small, standardised vector."""
    import cv2

    im = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    if im is None:
        raise SystemExit(f"{path}: not a readable image")
    top = cv2.resize(im[: max(1, int(im.shape[0] * 0.4))], (24, 10), interpolation=cv2.INTER_AREA)
    v = top.astype(np.float32).ravel()
    return (v - v.mean()) / (v.std() + 1e-6)


def eval_persons(images: Path, answers: pd.DataFrame) -> pd.Series:
    """A group id per ImageID (answers' order): the person, persons sharing a source photo merged."""
    ans = answers["ans"].to_numpy()
    x = np.stack([upper_face(images / name) for name in answers["ImageID"]])
    mask, klass = ans // 6, ans % 6
    normal, other = np.flatnonzero(mask == 2), np.flatnonzero(mask != 2)
    d = ((x[other, None, :] - x[None, normal, :]) ** 2).mean(-1)
    d[klass[other][:, None] != klass[normal][None, :]] = np.inf
    owner = np.empty(len(ans), dtype=int)
    owner[normal] = np.arange(len(normal))
    owner[other] = d.argmin(1)
    # identical normal photos (one source photo used twice) are one group
    same = ((x[normal, None, :] - x[None, normal, :]) ** 2).mean(-1) < 1e-6
    root = np.array([int(np.flatnonzero(row)[0]) for row in same])
    group = root[owner]
    sizes = np.bincount(group)[np.unique(group)]
    if (sizes % 7).any():
        raise SystemExit(f"eval persons: groups of {sorted(set(sizes.tolist()))} images, expected multiples of 7")
    return pd.Series(group, index=answers["ImageID"], name="person")


def halves(persons: pd.Series, klass: pd.Series, seed: int = SEED) -> pd.Series:
    """'selection' or 'confirmation' per ImageID: groups shuffled within each class, then alternated."""
    rng = np.random.default_rng(seed)
    by_group = pd.DataFrame({"person": persons.to_numpy(), "klass": klass.to_numpy()}).groupby("person")["klass"].first()
    half, i = {}, 0
    for k in sorted(by_group.unique()):  # one alternation running through the classes: halves differ by <= 1 group
        for g in rng.permutation(by_group.index[by_group == k].to_numpy()):
            half[g] = HALVES[i % 2]
            i += 1
    return persons.map(half).rename("half")


def digest(split: pd.DataFrame) -> str:
    """A short fingerprint of a split (which image is in which half), recorded with every score."""
    text = "\n".join(f"{i},{h}" for i, h in sorted(zip(split["ImageID"], split["half"])))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def training_copies(root: Path, image_ids: pd.Series) -> pd.Series:
    """Per eval ImageID, whether it shows a training photo (``mask_cls.data.pseudo.content_key``)."""
    from mask_cls.data.pseudo import content_key

    train = [p for p in (root / "train" / "images").rglob("*") if p.is_file() and not p.name.startswith(".")]
    keys = {content_key(str(p)) for p in train}
    return pd.Series([content_key(str(root / "eval" / "images" / i)) in keys for i in image_ids], index=image_ids)


def make(root: Path, answers: Path) -> pd.DataFrame:
    key = pd.read_csv(answers)
    known = answers.parent / "eval_persons.csv"
    if known.is_file():
        persons = pd.read_csv(known).set_index("ImageID")["person"].loc[key["ImageID"]]
    else:
        persons = eval_persons(root / "eval" / "images", key)
    half = halves(persons, key.set_index("ImageID")["ans"] % 6)
    leaked = set(persons[training_copies(root, key["ImageID"]).to_numpy()])
    half = half.where(~persons.isin(leaked).to_numpy(), DROPPED)
    if leaked:
        print(f"{len(leaked)} eval person group(s) show training photos: dropped from both halves")
    return pd.DataFrame({"ImageID": key["ImageID"], "person": persons.to_numpy(), "half": half.to_numpy()})


def load_or_make(path: Path, root: Path, answers: Path) -> pd.DataFrame:
    """The split at ``path``; made there (atomically) the first time."""
    if path.is_file():
        return pd.read_csv(path)
    split = make(root, answers)
    tmp = path.with_suffix(".tmp")
    split.to_csv(tmp, index=False)
    tmp.replace(path)
    return split


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--answers", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    split = load_or_make(args.out, args.root, args.answers)
    groups = split.groupby("half")["person"].nunique()
    print(f"{args.out}: {len(split)} images, {split.person.nunique()} person groups; "
          + ", ".join(f"{h} {groups.get(h, 0)} groups / {(split.half == h).sum()} images" for h in (*HALVES, DROPPED))
          + f"; digest {digest(split)}")


if __name__ == "__main__":
    main()
