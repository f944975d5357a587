"""A report of predictions against labels: per-class / per-task F1 (screen, CSV, JSON),
confusion-matrix PNGs, a reliability diagram (is the confidence to be trusted), a gallery of
the most confident mistakes, and the predictions themselves; figures go to every logger."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from mask_cls import labels as L
from mask_cls.evaluation import figures
from mask_cls.evaluation.calibration import expected_calibration_error, reliability
from mask_cls.evaluation.metrics import confusion, f1_per_class, score
from mask_cls.io import write_csv, write_json

#: a report's predictions, beside its scores
PREDICTIONS = "predictions.csv"


def read_predictions(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(labels, probabilities) of a report's ``predictions.csv``, checked: a file of a run is
    data, and a wrong one is an error that names the line."""
    from mask_cls.data.csv_reader import read_table
    from mask_cls.errors import DataError

    df = read_table(path, ("label", *L.PROB_COLUMNS))
    labels = pd.to_numeric(df["label"], errors="coerce").to_numpy()
    probs = df[L.PROB_COLUMNS].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isin(labels, np.arange(L.NUM_CLASSES)) | ~np.isfinite(probs).all(1) | (probs < 0).any(1) \
        | (np.abs(probs.sum(1) - 1) > 1e-3)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{path}:{df.index[i]}: not a label 0..{L.NUM_CLASSES - 1} with probabilities summing to 1")
    return labels.astype(int), probs


def per_class_table(y_true: np.ndarray, y_pred: np.ndarray) -> pd.DataFrame:
    cm = confusion(y_true, y_pred, L.NUM_CLASSES)
    return pd.DataFrame({
        "class": range(L.NUM_CLASSES),
        "name": [L.class_name(c) for c in range(L.NUM_CLASSES)],
        "f1": f1_per_class(cm),
        "support": cm.sum(1),
        "predicted": cm.sum(0),
    })


def write_predictions(images: Sequence[str], y_true: Sequence[int], probs: np.ndarray, path: Path) -> Path:
    """image, label, pred, p0..p17: what ``read_predictions`` reads back (the report's and the
    calibrated ``predictions_calibrated.csv``)."""
    rows = pd.DataFrame({"image": list(images), "label": np.asarray(y_true, dtype=int), "pred": probs.argmax(1)})
    return write_csv(pd.concat([rows, pd.DataFrame(probs, columns=L.PROB_COLUMNS)], axis=1), path)


def write_report(y_true, probs: np.ndarray, out_dir: str | Path, title: str, images: Sequence[str],
                 tta: Sequence[str], loggers: Sequence = (), show: bool = True, step: int = 0,
                 save_predictions: bool = True, persons: Sequence[str] | None = None) -> dict:
    """Everything about one set of predictions into ``out_dir``; returns the scores.
    ``predictions.csv`` (image, label, pred, p0..p17) lets ``task=pseudo`` tell how often the
    model is right above a confidence threshold; ``tta`` (the views that made ``probs``) goes into
    scores.json so that a later reader knows which predictor the figures describe. ``persons``
    (one per image) keeps the mistakes gallery to one image per person."""
    out = Path(out_dir)
    y_true = np.asarray(y_true, dtype=int)
    read = ~np.isnan(probs).any(1)  # rows of images skipped as unreadable (on_bad_image=skip) leave
    if not read.all():
        y_true, probs = y_true[read], probs[read]
        images = [p for p, r in zip(images, read) if r]
        persons = None if persons is None else [p for p, r in zip(persons, read) if r]
    y_pred = probs.argmax(1)
    ece = expected_calibration_error(y_true, probs)
    scores = score(y_true, y_pred) | {"ece": ece, "skipped_unreadable": int((~read).sum())}
    table = per_class_table(y_true, y_pred)
    write_csv(table, out / "per_class.csv")
    if save_predictions:
        write_predictions(images, y_true, probs, out / PREDICTIONS)
    write_json({**scores, "per_class_f1": table.f1.round(6).tolist(), "tta": list(tta)}, out / "scores.json")
    paths = [figures.confusion_figure(confusion(y_true, y_pred, L.NUM_CLASSES), out / "confusion.png", title),
             figures.reliability_figure(reliability(y_true, probs), ece, out / "reliability.png", title)]
    task_cms = {t: confusion(L.target(t, y_true), L.target(t, y_pred), L.TARGETS[t][0]) for t in ("mask", "gender", "age")}
    paths.append(figures.task_confusion_figure(task_cms, out / "confusion_tasks.png", title))
    g = figures.mistakes_figure(images, y_true, probs, out / "mistakes.png",
                                f"{title}: most confident mistakes, one per person", persons=persons)
    if g:
        paths.append(g)
    if show:
        _print(table, scores, title)
    log_figures(loggers, title, paths, step)
    for lg in loggers:  # the report's figures as MLflow metrics, beside the per-epoch val/f1 (no TTA)
        if type(lg).__name__ == "MLFlowLogger":
            lg.log_metrics({f"report/{k}": float(scores[k]) for k in ("f1", "acc", "f1_mask", "f1_gender", "f1_age", "ece")},
                           step=step)
    return scores


def summary_line(scores: dict) -> str:
    """The per-task F1 and the ECE under the table: one line, never wrapped (log files, grep)."""
    return (f"F1 mask {scores['f1_mask']:.3f}, gender {scores['f1_gender']:.3f}, age {scores['f1_age']:.3f}; "
            f"calibration error (ECE) {scores['ece']:.3f}")


def _print(table: pd.DataFrame, scores: dict, title: str) -> None:
    t = Table(title=f"{title}: macro F1 {scores['f1']:.4f}, accuracy {scores['acc']:.4f}")
    for col in ("class", "name", "f1", "support", "predicted"):
        t.add_column(col, justify="left" if col == "name" else "right")
    for r in table.itertuples():
        t.add_row(str(r[1]), r.name, f"{r.f1:.3f}", str(r.support), str(r.predicted))
    console = Console()
    console.print(t)
    console.print(summary_line(scores), soft_wrap=True, markup=False, highlight=False)


def log_figures(loggers: Sequence, title: str, paths: Sequence[Path], step: int = 0) -> None:
    """Send the PNGs to every logger that takes images (wandb, TensorBoard, MLflow artifacts); CSV
    keeps files only."""
    import re

    prefix = re.sub(r"[^\w/-]+", "_", title).strip("_")  # keys without spaces or brackets
    for lg in loggers:
        send = _IMAGE_SENDERS.get(type(lg).__name__)
        if send is None:
            continue
        for p in paths:
            send(lg, f"{prefix}/{p.stem}", p, step)


def _to_wandb(logger, key: str, path: Path, step: int) -> None:
    logger.log_image(key=key, images=[str(path)])


def _to_tensorboard(logger, key: str, path: Path, step: int) -> None:
    import matplotlib.image as mpimg

    # at the run's last step, beside the scalars (not at step 0)
    logger.experiment.add_image(key, mpimg.imread(path)[..., :3], global_step=step, dataformats="HWC")


def _to_mlflow(logger, key: str, path: Path, step: int) -> None:
    logger.experiment.log_artifact(logger.run_id, str(path), f"report/{key.rsplit('/', 1)[0]}")


_IMAGE_SENDERS = {"WandbLogger": _to_wandb, "TensorBoardLogger": _to_tensorboard, "MLFlowLogger": _to_mlflow}
