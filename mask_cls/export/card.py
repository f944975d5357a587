"""``MODEL_CARD.md``: what the exported model is, what it was trained on, how well it did on
persons it never saw, the exact command, and what it must not be used for. Every number comes
from the run's own files (its report on the validation persons, or a cv run's out-of-fold
report) and from the training table; what a run does not hold is said to be missing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from mask_cls import labels as L
from mask_cls.data.images import INPUT_CONTRACT
from mask_cls.inert import md_code, md_text

LIMITS = """\
## Intended use and limitations

- **What it is for**: research and competition work on the face-mask task: whether a mask is
  worn correctly, incorrectly or not at all, on cropped face photos like the training ones.
- **Sensitive attributes**: two of its three outputs, gender and age group, are inferred from
  a face. Such inferences are error-prone and unequal across groups of people (see the table
  above where the data has the columns), and gender is reduced to the two labels the data set
  had. **It must not be used to make decisions about people** (access, identity, eligibility,
  surveillance or profiling), nor to infer the attributes of people who have not agreed to it.
- **Conditions**: it learnt from specific photo conditions (the training set's cameras, crops,
  lighting and mask styles); expect lower accuracy on other photos, on people unlike those in
  the training table, and on images that are not a single centred face.
- **Errors to expect**: most mistakes of such models are an age group one step off (around 30
  and 60) and gender on young or occluded faces; the per-class F1 in the run's
  `report/per_class.csv` shows where this model is weakest.
"""


def _prediction_files(run: Path, calibrated: bool) -> list[Path]:
    """The run's held-out predictions as the exported model makes them: a train run's report, a cv
    run's folds (each on its own validation persons); the calibrated ones where the export applies
    temperatures (``predictions_calibrated.csv``)."""
    from mask_cls.evaluation.temperature import CALIBRATED

    folders = sorted((p for p in run.glob("fold_*") if p.is_dir()), key=lambda p: int(p.name.split("_")[1])) or [run]
    files = []
    for folder in folders:
        report = folder / "report"
        f = report / CALIBRATED if calibrated and (report / CALIBRATED).is_file() else report / "predictions.csv"
        if not f.is_file():
            return []
        files.append(f)
    return files


def _scores(runs: Sequence[str], calibrated: bool) -> tuple[dict | None, str]:
    """The exported model's scores on persons it never saw, and what they are, or None and why
    there is no such figure (an ensemble of several runs: no persons none of them saw)."""
    from mask_cls.evaluation.calibration import expected_calibration_error
    from mask_cls.evaluation.metrics import score

    if len(runs) > 1:
        return None, ("no held-out figure exists for an ensemble of several runs: no persons are held out from all "
                      "of them; see each run's own report")
    run = Path(runs[0])
    files = _prediction_files(run, calibrated)
    if not files:
        return None, f"no held-out predictions in {run}"
    try:
        p = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
        probs = p[L.PROB_COLUMNS].to_numpy(dtype=float)
        y = p["label"].to_numpy(dtype=int)
        found = score(y, probs.argmax(1)) | {"ece": expected_calibration_error(y, probs),
                                              "tta": _report_tta(files[0].parent)}
    except (OSError, ValueError, KeyError) as e:
        return None, f"{files[0]} unreadable ({type(e).__name__})"
    what = ("every fold's held-out persons (each fold's model on the persons it never saw)" if len(files) > 1
            else "the run's validation persons (its held-out fold)")
    return found, what + (", with the temperatures the export applies" if calibrated else ", as trained (no temperatures)")


def _report_tta(report: Path) -> object:
    """The TTA views the run's report was predicted with (``scores.json``), or "?"."""
    from mask_cls.errors import ConfigError
    from mask_cls.runfiles import read_json

    try:
        found = read_json(report / "scores.json") if (report / "scores.json").is_file() else {}
    except ConfigError:
        return "?"
    return found.get("tta", "?") if isinstance(found, dict) else "?"


def _trained_rows(runs: Sequence[str], table: pd.DataFrame | None) -> tuple[pd.DataFrame | None, str]:
    """The rows the exported model trained on, and a sentence saying so: a train run's training
    side only (its validation images, in its report, left out); a cv run's folds together saw
    every person."""
    if table is None or len(runs) != 1:
        return table, "Counts below: the whole training table (the models of several runs trained on parts of it)."
    run = Path(runs[0])
    val = run / "report" / "predictions.csv"
    if any(run.glob("fold_*")) or not val.is_file():
        return table, "Counts below: the whole training table (each fold's model trained on the other folds' persons)."
    try:
        held = set(pd.read_csv(val, usecols=["image"])["image"].astype(str))
    except (OSError, ValueError, KeyError):
        return table, "Counts below: the whole training table (the run's validation images could not be read)."
    kept = table[~table["image"].astype(str).isin(held)]
    return kept, (f"Counts below: the {kept['person'].nunique()} persons the model trained on (its "
                  f"{table['person'].nunique() - kept['person'].nunique()} validation persons left out).")


def _number(scores: dict, key: str) -> str:
    """A score at four decimals; anything that is not a number (a file is data) as "n/a"."""
    value = scores.get(key)
    return f"{value:.4f}" if isinstance(value, int | float) and not isinstance(value, bool) else "n/a"


def _groups(run: Path, table: pd.DataFrame | None) -> list[str]:
    """Accuracy per race, gender and age group on the validation predictions, where known."""
    preds = run / "report" / "predictions.csv"
    if not preds.is_file():  # a cv run keeps its out-of-fold predictions in oof.csv
        preds = run / "oof.csv"
    if table is None or not preds.is_file():
        return ["(no per-group figures: the run's validation predictions or the training table are missing)"]
    keep = [c for c in ("image", "race") if c in table]
    p = pd.read_csv(preds, usecols=["image", "label", "pred"]).merge(table[keep], on="image", how="left")
    lines = ["| group | images | accuracy (18 classes) | gender right | age group right |", "|---|---:|---:|---:|---:|"]
    truth, pred = p["label"].to_numpy(), p["pred"].to_numpy()
    p = p.assign(right=truth == pred, g_right=(truth // 3) % 2 == (pred // 3) % 2, a_right=truth % 3 == pred % 3)
    columns = [("race", "race"), ("gender", "gender"), ("age_group", "age group")]
    p["gender"] = [L.GENDER_NAMES[(int(v) // 3) % 2] for v in truth]
    p["age_group"] = [L.AGE_NAMES[int(v) % 3] for v in truth]
    for col, name in columns:
        if col not in p or p[col].isna().all() or (p[col].astype(str) == "").all():
            lines.append(f"| {name}: not in the data | | | | |")
            continue
        for value, g in p.groupby(p[col].astype(str)):
            lines.append(f"| {name} = {md_text(str(value))} | {len(g)} | {g.right.mean():.3f} | {g.g_right.mean():.3f} | "
                         f"{g.a_right.mean():.3f} |")
    return lines


def _data_lines(data: dict, table: pd.DataFrame | None) -> list[str]:
    """The training data: root, layout, persons, images per class, persons by race and gender
    (``table``: the rows the exported model trained on)."""
    lines: list[str] = []
    lines.append(f"- data root: {md_code(str(data.get('root')))} (layout {md_code(str(data.get('layout', 'competition')))})")
    if table is not None:
        persons = table["person"].nunique()
        counts = table["label"].value_counts().reindex(range(L.NUM_CLASSES), fill_value=0)
        lines += [f"- {persons} persons, {len(table)} images; images per class: "
                  + ", ".join(f"{c}: {n}" for c, n in counts.items())]
        if "race" in table and (table["race"].astype(str) != "").any():
            lines.append("- persons by race (as the table writes it): " + ", ".join(
                f"{md_text(str(k))}: {v}" for k, v in table.drop_duplicates("person")["race"].astype(str).value_counts().items()))
        lines.append("- persons by gender: " + ", ".join(
            f"{L.GENDER_NAMES[int(k)]}: {v}" for k, v in table.drop_duplicates("person")["gender"].value_counts().items()))
    else:
        lines.append("- the training table could not be read here (counts not shown)")
    return lines


def _framing_lines(run: Path) -> list[str]:
    """How the training photos were framed (``data.photos`` of the run's manifest): the crop to
    give new photos (``task=predict task.crop=face``, ``Predictor.from_run(run, crop="face")``)."""
    from mask_cls.data.crop_rule import trained_on

    photos = trained_on(run) or {}
    rule, shape = photos.get("prepare"), photos.get("h_over_w")
    if isinstance(rule, dict):
        return [f"- photos: face crops of `task=prepare` ({', '.join(f'{k} {md_text(str(v))}' for k, v in rule.items())}); "
                "crop new photos the same way (`task.crop=face`, `Predictor(crop=\"face\")` apply it)"]
    if isinstance(shape, int | float):
        return [f"- photos: median height / width {shape:.2f}; a face crop of new photos takes that shape "
                "(`task.crop=face`, `Predictor(crop=\"face\")`)"]
    return ["- photos: how they were framed is not recorded (a run made before it was)"]


#: what each ``task.keep`` rule (``kept`` in a fit's metrics.json) keeps, as the card says it
KEPT = {"best": "the epoch of the highest val/f1", "loss": "the epoch of the lowest val/loss",
        "last": "the schedule's final epoch", "swa": "the average of the last epochs' weights (SWA)"}


def _model_lines(runs: Sequence[str], models: Sequence[str]) -> list[str]:
    """Per exported checkpoint, which one of its fit it is and by which rule it was kept."""
    from mask_cls.runfiles import read_json

    lines = []
    for model in models:
        path = Path(model)
        record = path.parent.parent / "metrics.json"  # RUN[/fold_k]/checkpoints/FILE -> that fit's metrics
        found = read_json(record) if record.is_file() else None
        kept = found.get("kept") if isinstance(found, dict) else None
        rule = f"`task.keep={kept}`, {KEPT[kept]}" if isinstance(kept, str) and kept in KEPT else "how: not recorded"
        shown = next((str(path.relative_to(r)) for r in map(Path, runs) if path.is_relative_to(r)), path.name)
        lines.append(f"- model: {md_code(shown)} (kept by {rule})")
    return lines


def write_card(out: Path, runs: Sequence[str], models: Sequence[str], tta: Sequence[str], image_size: Sequence[int],
               table: pd.DataFrame | None, data: dict, command: str, overrides: list[str], commit: str | None,
               parity: dict, calibrated: bool = False) -> Path:
    from mask_cls.io import atomic_write

    run = Path(runs[0])
    scores, what = _scores(runs, calibrated)
    full = table
    table, trained_on = _trained_rows(runs, table)
    lines = ["# Model card", "",
             f"Exported from {', '.join(md_code(str(r)) for r in runs)} ({len(models)} model(s) averaged, "
             f"TTA {md_text(str(list(tta)))}), "
             f"input uint8 RGB {image_size[0]}x{image_size[1]} (N x 3 x H x W), output the 18 class probabilities.",
             "", "To get the tool's numbers from `model.onnx`, prepare each photo as the tool does (`input` in "
             "`export.json`): " + INPUT_CONTRACT["decode"] + "; then " + INPUT_CONTRACT["resize"] + ".", "",
             "## Task and labels", "",
             "One of 18 classes = mask (wear, incorrect, not_wear) x gender (male, female) x age group "
             "(<30, 30-59, >=60): class = 6 * mask + 3 * gender + age group.", "",
             "| class | mask / gender / age |", "|---:|---|",
             *[f"| {c} | {L.class_name(c)} |" for c in range(L.NUM_CLASSES)], "",
             "## Training data", "", trained_on, ""]
    lines += _data_lines(data, table)
    lines += _framing_lines(run)
    lines += ["", "## Metrics", ""]
    if scores:
        lines += [f"On {what}, {md_text(str(scores.get('n', '?')))} images, TTA {md_text(str(scores.get('tta')))}:", "",
                  "| macro F1 (18) | mask F1 | gender F1 | age F1 | accuracy | calibration error (ECE) |",
                  "|---:|---:|---:|---:|---:|---:|",
                  "| " + " | ".join(_number(scores, k) for k in ("f1", "f1_mask", "f1_gender", "f1_age", "acc", "ece"))
                  + " |", ""]
    else:
        lines += [f"Not available: {what}.", ""]
    lines += ["Per group, on the held-out predictions:", "", *(_groups(run, full) if len(runs) == 1 else
                                                                  ["(none: see above)"]), "",
              "## How it was made", "", *_model_lines(runs, models),
              f"- the run's recorded overrides: {md_code(' '.join(overrides) or '(none)')}",
              f"- export command: {md_code(command)}",
              f"- code commit at export: {md_code(commit or 'not a git checkout')}",
              f"- ONNX opset {parity['opset']}; onnxruntime against PyTorch, largest probability difference "
              + ", ".join(f"{r['max_abs_diff']:.1e} at batch {r['batch']}" for r in parity["batches"])
              + f" (refused above {parity['tolerance']:g}); classes agree on "
              + ", ".join(f"{100 * r['argmax_agree']:.0f}%" for r in parity["batches"]), "",
              LIMITS]
    path = out / "MODEL_CARD.md"
    atomic_write(path, lambda tmp: tmp.write_text("\n".join(lines)))
    return path
