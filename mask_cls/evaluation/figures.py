"""Figures people would rather look at than read: confusion matrices and a mistakes gallery."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mask_cls import labels as L  # noqa: E402
from mask_cls.data.images import read_rgb  # noqa: E402
from mask_cls.errors import DataError  # noqa: E402
from mask_cls.io import atomic_write  # noqa: E402

SHORT = {"wear": "W", "incorrect": "I", "not_wear": "N", "male": "M", "female": "F"}


def short_name(c: int) -> str:
    m, g, a = L.decode(c)
    return f"{c} {SHORT[L.MASK_NAMES[m]]}/{SHORT[L.GENDER_NAMES[g]]}/{L.AGE_NAMES[a]}"


def save(fig, path: Path) -> Path:
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=110, bbox_inches="tight",
                                                 pil_kwargs={"compress_level": 1}))  # zlib 6 took a third of the time
    plt.close(fig)
    return path


def _matrix(ax, cm: np.ndarray, names: Sequence[str], title: str) -> None:
    """Counts in the cells, colour by the share of the cell's true class (the row), with a
    colour bar that says so; tick labels never overlap the axis labels (padding)."""
    rows = cm.sum(1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm, dtype=float), where=rows > 0)
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    bar = ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
    bar.set_label("share of the true class (row-normalised)", fontsize=7)
    bar.ax.tick_params(labelsize=6)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xlabel("predicted", labelpad=8)
    ax.set_ylabel("true", labelpad=8)
    ax.set_title(f"{title}\nnumbers: images; colour: share of each true class", fontsize=9)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if norm[i, j] > 0.5 else "black")


def confusion_figure(cm: np.ndarray, path: Path, title: str) -> Path:
    """18 x 18 counts, coloured by the share of each true class (row)."""
    fig, ax = plt.subplots(figsize=(10, 8.5))
    _matrix(ax, cm, [short_name(c) for c in range(L.NUM_CLASSES)], title)
    return save(fig, path)


def task_confusion_figure(cms: dict[str, np.ndarray], path: Path, title: str) -> Path:
    names = {"mask": L.MASK_NAMES, "gender": L.GENDER_NAMES, "age": L.AGE_NAMES}
    fig, axes = plt.subplots(1, len(cms), figsize=(4.8 * len(cms), 4))
    fig.subplots_adjust(wspace=0.55)  # room for each colour bar and the next tick labels (constrained layout: +60% time)
    for ax, (task, cm) in zip(np.atleast_1d(axes), cms.items()):
        _matrix(ax, cm, names[task], f"{title}: {task}")
    return save(fig, path)


def most_confident_mistakes(y_true: np.ndarray, probs: np.ndarray, persons: Sequence[str] | None = None,
                            n: int = 24) -> np.ndarray:
    """Rows of the ``n`` most confident mistakes, most confident first, the first of each person
    only (a person's seven photos are mostly one mistake seven times)."""
    pred = probs.argmax(1)
    wrong = np.flatnonzero(pred != np.asarray(y_true))
    wrong = wrong[np.argsort(-probs[wrong, pred[wrong]], kind="stable")]
    if persons is not None:
        seen: set = set()
        first = []
        for i in wrong:
            if persons[int(i)] not in seen:
                seen.add(persons[int(i)])
                first.append(i)
        wrong = np.array(first, dtype=int)
    return wrong[:n]


TILE = (160, 120)  # (H, W) of a gallery thumbnail


def _tile(image: str) -> np.ndarray | None:
    """The image fitted inside ``TILE`` (aspect kept, centred on white); None if unreadable."""
    import cv2

    try:
        rgb = read_rgb(image, TILE)
    except DataError:  # changed or removed since it was scored: the tile says so
        return None
    scale = min(TILE[0] / rgb.shape[0], TILE[1] / rgb.shape[1])
    h, w = max(1, round(rgb.shape[0] * scale)), max(1, round(rgb.shape[1] * scale))
    out = np.full((*TILE, 3), 255, np.uint8)
    top, left = (TILE[0] - h) // 2, (TILE[1] - w) // 2
    out[top:top + h, left:left + w] = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    return out


def mistakes_figure(images: Sequence[str], y_true: np.ndarray, probs: np.ndarray, path: Path,
                    title: str, n: int = 24, cols: int = 8, persons: Sequence[str] | None = None) -> Path | None:
    """The ``n`` most confident mistakes, at most one per person: thumbnails with true /
    predicted class and confidence. One mosaic on one axes: a grid of 24 axes took 5x as long
    to draw, and every run draws this figure."""
    pred = probs.argmax(1)
    wrong = most_confident_mistakes(y_true, probs, persons, n)
    if not len(wrong):
        return None
    rows = int(np.ceil(len(wrong) / cols))
    (th, tw), caption, gap = TILE, 48, 16  # pixels: a tile, the caption band above it, the gap beside it
    mosaic = np.full((rows * (caption + th + gap), cols * (tw + gap), 3), 255, np.uint8)
    fig = plt.figure(figsize=(cols * 1.6, rows * 2.3))
    ax = fig.add_axes((0, 0, 1, 0.94))
    ax.axis("off")
    for k, i in enumerate(wrong):
        r, c = divmod(k, cols)
        y0, x0 = r * (caption + th + gap) + caption, c * (tw + gap) + gap // 2
        tile = _tile(images[i])
        if tile is None:
            ax.text(x0 + tw / 2, y0 + th / 2, "unreadable", ha="center", va="center", fontsize=6)
        else:
            mosaic[y0:y0 + th, x0:x0 + tw] = tile
        ax.text(x0 + tw / 2, y0 - 4, f"true {short_name(int(y_true[i]))}\npred {short_name(int(pred[i]))}\n"
                f"p={probs[i, pred[i]]:.2f}", ha="center", va="bottom", fontsize=6)
    ax.imshow(mosaic, aspect="equal", interpolation="nearest")
    fig.suptitle(title, fontsize=9)
    return save(fig, path)


def class_histogram_figure(predicted: Sequence[int] | np.ndarray, kept: Sequence[int] | np.ndarray, path: Path,
                           title: str) -> Path:
    """Per class: images predicted as it, and those kept (pseudo-labels above the threshold)."""
    x = np.arange(L.NUM_CLASSES)
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.bar(x, predicted, color="#c6dbef", label="predicted")
    ax.bar(x, kept, color="#2171b5", width=0.55, label="kept")
    ax.set_xticks(x, [short_name(int(c)) for c in x], rotation=90, fontsize=7)
    ax.set_ylabel("images")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    return save(fig, path)


def reliability_figure(table, ece: float, path: Path, title: str) -> Path:
    """Accuracy against confidence per bin (a calibrated model sits on the diagonal), with the
    images in each bin below: where the bars fall short of the line, the model is over-confident."""
    fig, (ax, counts) = plt.subplots(2, 1, figsize=(5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    mid, width = (table["low"] + table["high"]) / 2, table["high"] - table["low"]
    ax.bar(mid, table["accuracy"].fillna(0), width=width * 0.9, color="#2171b5", label="accuracy")
    ax.plot([0, 1], [0, 1], color="#cb181d", linestyle="--", linewidth=1, label="calibrated")
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(f"{title}: ECE {ece:.3f}", fontsize=9)
    counts.bar(mid, table["images"], width=width * 0.9, color="#9ecae1")
    counts.set_xlabel("confidence (top probability)")
    counts.set_ylabel("images")
    return save(fig, path)


def selection_figure(curve, threshold: float, path: Path, title: str, min_precision: float | None = None) -> Path:
    """A pseudo-label threshold's trade-off on labeled predictions: the share kept and the share
    of those right, against the threshold, with the chosen threshold (and target) marked."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(curve["threshold"], curve["right"], color="#2171b5", label="right (precision)")
    ax.plot(curve["threshold"], curve["kept_share"], color="#6a51a3", linestyle="--", label="kept (share of images)")
    ax.axvline(threshold, color="#cb181d", linewidth=1, label=f"threshold {threshold:.3f}")
    if min_precision is not None:
        ax.axhline(min_precision, color="#cb181d", linestyle=":", linewidth=1, label=f"min_precision {min_precision}")
    ax.set_xlabel("threshold (top probability)")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(title, fontsize=9)
    return save(fig, path)


def crops_figure(examples: Sequence[tuple[str, str, Any]], path: Path, title: str, cols: int = 4) -> Path | None:
    """``task=prepare``: each example's photo (with the face box found, in green) beside its crop,
    marked face found or centre crop, so a user sees what the detector did before training on the copy.
    An example's third item is the face ``((x, y, w, h), score)`` (or a truthy flag), or None."""
    import cv2

    if not examples:
        return None
    rows = int(np.ceil(len(examples) / cols))
    fig = plt.figure(figsize=(cols * 2 * 1.3, rows * 2.0 + 0.3), layout="constrained")
    axes = fig.subplots(rows, 2 * cols, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for k, (src, dst, hit) in enumerate(examples):
        r, c = divmod(k, cols)
        for ax, image, label in ((axes[r, 2 * c], src, "photo"), (axes[r, 2 * c + 1], dst, "face" if hit else
                                                                   "centre crop (no face)")):
            try:
                rgb = read_rgb(image)
                if label == "photo" and isinstance(hit, tuple):
                    (x, y, w, h), score = hit
                    rgb = cv2.rectangle(rgb.copy(), (x, y), (x + w, y + h), (0, 200, 0), max(1, rgb.shape[0] // 100))
                    label = f"photo (score {score:.2f})"
                ax.imshow(cv2.resize(rgb, (120, int(120 * rgb.shape[0] / rgb.shape[1]))), aspect="equal")
            except DataError:
                ax.text(0.5, 0.5, "unreadable", ha="center", va="center", fontsize=6)
            ax.set_title(label, fontsize=6, color="black" if hit or label.startswith("photo") else "#cb181d")
    fig.suptitle(title, fontsize=8)
    return save(fig, path)
