"""How right pseudo-labels are at each threshold: a teacher's own validation estimate against the answer key.

For each teacher (a train run; its ``report/predictions.csv`` holds its validation persons
predicted with the run's TTA, as ``task=pseudo`` reads them), the pseudo-label selection is
applied at every threshold twice: to those validation predictions (what ``task=pseudo`` logs and
``task.min_precision`` chooses from) and to the eval images, predicted as a user would,
``python run.py task=predict run_dir=RUN task.save_probs=true``, against the answer key. The
table gives the share kept and the share right at a few thresholds, mean and spread over
teachers; OUT/pseudo_threshold.png draws both curves; OUT/curves.csv holds every point. With
``--root`` (the training data, competition layout), a second table says what the confident
validation mistakes are: which task is wrong, how near the true age is to a group boundary, and
how many persons they come from.

    python bench/pseudo_threshold.py RUN [RUN ...] --answers KEY --out DIR [--root TRAIN_ROOT]
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, parser  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from mask_cls.data.pseudo import selection_curve  # noqa: E402
from mask_cls.evaluation.report import PREDICTIONS, read_predictions  # noqa: E402
from mask_cls.labels import PROB_COLUMNS, target  # noqa: E402

THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)


def eval_probs(run: Path, out: Path, quick: bool) -> pd.DataFrame:
    """The teacher's probabilities on the eval images, by ``task=predict`` (its saved config and TTA)."""
    if not (out / "probs.csv").is_file():
        cmd = [sys.executable, str(REPO / "run.py"), "task=predict", f"run_dir={run}", "task.save_probs=true",
               f"hydra.run.dir={out}", *(["data.num_workers=0"] if quick else [])]
        subprocess.run(cmd, check=True, cwd=REPO, env={**os.environ, "WANDB_MODE": "disabled"})
    return pd.read_csv(out / "probs.csv")


def curves(runs: list[Path], answers: Path, out: Path, quick: bool) -> pd.DataFrame:
    key = pd.read_csv(answers).set_index("ImageID")["ans"]
    parts = []
    for i, run in enumerate(runs):
        y_val, p_val = read_predictions(run / "report" / PREDICTIONS)
        probs = eval_probs(run, out / "predict" / f"{i}_{run.name}", quick)
        y_eval = key.loc[probs["ImageID"]].to_numpy()
        for part, y, p in (("validation", y_val, p_val), ("answer key", y_eval, probs[PROB_COLUMNS].to_numpy())):
            parts.append(selection_curve(y, p).assign(teacher=str(run), part=part))
    return pd.concat(parts, ignore_index=True)


def at_thresholds(curve: pd.DataFrame) -> pd.DataFrame:
    """Per teacher, part and threshold t: the curve's first point at or above t (what
    ``task.threshold=t`` keeps, up to the 201-quantile grid; nothing above t: kept 0)."""
    rows = []
    for (teacher, part), c in curve.groupby(["teacher", "part"], sort=False):
        for t in THRESHOLDS:
            above = c[c.threshold >= t]  # none: nothing kept, no precision
            rows.append({"teacher": teacher, "part": part, "threshold": t,
                         "kept": above.kept_share.iloc[0] if len(above) else 0.0,
                         "right": above.right.iloc[0] if len(above) else np.nan})
    return pd.DataFrame(rows)


def mistakes(runs: list[Path], root: Path, threshold: float = 0.9) -> pd.DataFrame:
    """Of each teacher's validation images kept at ``threshold``, the wrong ones: the share wrong
    in each task, the share of age mistakes whose true age is within 3 years of 30 or 60 (and of
    all validation images, for comparison), and the persons they come from."""
    from mask_cls.data import layouts

    people = layouts.open({"layout": "competition", "root": root}).read_train(check_images=False).set_index("image")
    rows = []
    for run in runs:
        preds = pd.read_csv(run / "report" / PREDICTIONS)  # checked by read_predictions in curves()
        y, probs = preds["label"].to_numpy(), preds[PROB_COLUMNS].to_numpy()
        pred = probs.argmax(1)
        wrong = (probs.max(1) >= threshold) & (pred != y)
        age = people.loc[preds["image"], "age"].to_numpy()
        near = np.minimum(np.abs(age - 29.5), np.abs(age - 59.5)) <= 3  # 27-32 or 57-62
        age_wrong = wrong & (target("age", y) != target("age", pred))
        rows.append({"teacher": str(run), "kept": int((probs.max(1) >= threshold).sum()), "wrong": int(wrong.sum()),
                     **{f"{t} wrong": float((target(t, y) != target(t, pred))[wrong].mean()) if wrong.any() else np.nan
                        for t in ("mask", "gender", "age")},
                     "age wrong near 30/60": float(near[age_wrong].mean()) if age_wrong.any() else np.nan,
                     "all near 30/60": float(near.mean()),
                     "persons": int(people.loc[preds["image"][wrong], "person"].nunique()),
                     "of persons": int(people.loc[preds["image"], "person"].nunique())})
    return pd.DataFrame(rows)


def figure(points: pd.DataFrame, path: Path) -> Path:
    from mask_cls.evaluation.figures import plt, save

    fig, ax = plt.subplots(figsize=(6, 4))
    for part, color in (("validation", "#2171b5"), ("answer key", "#cb181d")):
        g = points[points.part == part].groupby("threshold")
        sd = g.right.std().fillna(0)
        ax.errorbar(g.right.mean().index, g.right.mean(), yerr=sd, color=color, marker="o", capsize=3,
                    label=f"share right ({part})")
        ax.plot(g.kept.mean().index, g.kept.mean(), color=color, linestyle="--", label=f"share kept ({part})")
    ax.set_xlabel("task.threshold")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="lower left")
    n = points.teacher.nunique()
    ax.set_title(f"pseudo-labels of {n} teacher(s): validation estimate vs answer key (mean +- sd)", fontsize=9)
    return save(fig, path)


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("runs", type=Path, nargs="+", help="teacher train runs")
    p.add_argument("--answers", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--root", type=Path, help="the teachers' training data (competition layout): what the mistakes are")
    args = p.parse_args()
    missing = [str(r) for r in args.runs if not (r / "report" / PREDICTIONS).is_file()]
    if missing:
        p.error(f"no report/{PREDICTIONS} (written by train runs of this version) in: {', '.join(missing)}")
    curve = curves(args.runs, args.answers, args.out, args.quick)
    curve.to_csv(args.out / "curves.csv", index=False)
    points = at_thresholds(curve)
    summary = points.groupby(["threshold", "part"], sort=False)[["kept", "right"]].agg(["mean", "std"])
    wide = points.pivot(index=["teacher", "threshold"], columns="part", values="right")
    diff = (wide["validation"] - wide["answer key"]).groupby("threshold").agg(["mean", "std"])
    print(f"pseudo-label selection of {len(args.runs)} teacher(s); machine: {machine()}")
    print(summary.sort_index().to_string(float_format=lambda v: f"{v:.3f}"))
    print("\nvalidation estimate - answer key, share right (mean, sd over teachers):")
    print(diff.to_string(float_format=lambda v: f"{v:+.3f}" if np.isfinite(v) else ""))
    print(f"figure: {figure(points, args.out / 'pseudo_threshold.png')}")
    if args.root is not None:
        print("\nthe wrong labels among the validation images kept at 0.9 (shares of them):")
        print(mistakes(args.runs, args.root).to_string(index=False, float_format=lambda v: f"{v:.2f}"))


if __name__ == "__main__":
    main()
