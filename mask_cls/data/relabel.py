"""Label fixes: a CSV of corrections applied by *setting* values (applying twice changes nothing).

Columns ``key,field,value``:
- key: a person folder (``000020_female_Asian_54``) or an id (``000020``; every folder with it)
- field: ``gender`` (male|female), ``age`` (whole years 0..120, as in train.csv), or ``mask:<file stem>`` to set the mask
  state of one image (``mask:incorrect_mask,not_wear`` with ``mask:normal,incorrect`` fixes
  two swapped files)
- was (optional): the value the fix expects to find (``female`` for a fix to ``male``); a person
  whose label reads otherwise is someone else with the same id, and is left alone (counted)

A bare id that names more than one person folder is ambiguous and is not applied either.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import pandas as pd

from mask_cls import labels as L
from mask_cls.data.csv_reader import read_table
from mask_cls.errors import DataError
from mask_cls.labels import age_problem

log = logging.getLogger(__name__)
SHIPPED = {"competition": "competition_fixes.csv"}  # data.relabel=competition
MASK_VALUES = {name: i for i, name in enumerate(L.MASK_NAMES)}


def resolve(spec: str) -> Path:
    if spec in SHIPPED:
        return Path(str(resources.files("mask_cls.data") / "fixes" / SHIPPED[spec]))
    return Path(spec)


def read_fixes(spec: str) -> pd.DataFrame:
    path = resolve(spec)
    if not path.is_file():
        raise DataError(f"{path}: relabel file not found")
    df = read_table(path, ("key", "field", "value"), comments=True)  # the one CSV reader
    if "was" not in df.columns:
        df["was"] = ""
    for i, r in zip(df.index, df.itertuples(index=False)):
        ok = (r.field == "gender" and r.value in L.GENDER_CODES) or \
             (r.field == "age" and age_problem(r.value) is None) or \
             (r.field.startswith("mask:") and r.field[5:] in L.MASK_FILES and r.value in MASK_VALUES)
        if not ok:
            raise DataError(f"{path}:{i}: cannot set {r.field}={r.value!r}")
        was = getattr(r, "was", "")
        if was and was not in (L.GENDER_CODES if r.field == "gender" else MASK_VALUES if r.field != "age" else
                               {was: 0} if age_problem(was) is None else {}):
            raise DataError(f"{path}:{i}: was={was!r} is not a value of {r.field}")
    return df


def current(rows: pd.DataFrame, stems: pd.Series, field: str) -> str:
    """The value of ``field`` that one person's rows read now (what a ``was`` guard compares)."""
    if field == "gender":
        return L.GENDER_NAMES[int(rows["gender"].iloc[0])]
    if field == "age":
        return str(int(rows["age"].iloc[0]))
    mask = rows.loc[stems == field[5:], "mask"]
    return L.MASK_NAMES[int(mask.iloc[0])] if len(mask) else ""


def apply_fixes(table: pd.DataFrame, spec: str, root: str | Path | None = None) -> pd.DataFrame:
    """A copy of the image table with the fixes set and labels recomputed.

    The shipped fix sets are keyed by the real data's ids, which the synthetic dataset reuses
    (000020 exists in both): on a synthetic set (``synth.json`` in ``root``) they are not applied."""
    if spec in SHIPPED and root is not None and (Path(root) / "synth.json").is_file():
        log.warning("relabel %s: its keys are the real competition data's ids, which this synthetic set "
                    "reuses for other persons; not applied", spec)
        return table
    fixes = read_fixes(spec)
    t = table.copy()
    stems = t["image"].map(lambda p: Path(p).stem)
    applied, unknown, skipped = 0, [], []
    for r in fixes.itertuples(index=False):
        rows = (t["person"] == r.key) | (t["id"] == r.key)
        if not rows.any():
            unknown.append(r.key)
            continue
        if t.loc[rows, "person"].nunique() > 1:
            skipped.append(f"{r.key} (ambiguous: {t.loc[rows, 'person'].nunique()} person folders)")
            continue
        if getattr(r, "was", "") and current(t[rows], stems[rows], r.field) != r.was:
            skipped.append(f"{r.key} ({r.field} is not {r.was})")
            continue
        if r.field == "gender":
            t.loc[rows, "gender"] = L.GENDER_CODES[r.value]
        elif r.field == "age":
            t.loc[rows, "age"] = int(float(r.value))
        else:
            t.loc[rows & (stems == r.field[5:]), "mask"] = MASK_VALUES[r.value]
        applied += 1
    if skipped:
        log.warning("relabel %s: %d fix(es) written for another person, not applied: %s", spec, len(skipped),
                    "; ".join(skipped[:10]))
    if unknown:
        log.warning("relabel %s: %d key(s) not in the data, ignored: %s", spec, len(unknown), ", ".join(unknown[:10]))
    t["label"] = L.encode(t["mask"].to_numpy(), t["gender"].to_numpy(), L.age_group(t["age"].to_numpy()))
    changed = int((t["label"] != table["label"]).sum())
    log.info("relabel %s: %d fix(es) applied, %d image label(s) changed", spec, applied, changed)
    return t
