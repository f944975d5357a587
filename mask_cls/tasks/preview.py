"""``task=preview``: a PNG grid of a few persons per class, as drawn and as augmented for
training, so a user sees what the model sees."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig

from mask_cls import labels as L
from mask_cls.data.datamodule import MaskDataModule
from mask_cls.data.images import read_rgb
from mask_cls.evaluation.figures import plt, save, short_name
from mask_cls.rundir import log
from mask_cls.tasks import register


@register("preview")
def preview(cfg: DictConfig, out: Path) -> None:
    from mask_cls.progress import track

    dm: MaskDataModule = instantiate(cfg.data)
    log.info("preview: reading the training table and its folds, then %d persons per class", int(cfg.task.per_class))
    dm.prepare_data()
    dm.setup("fit")
    table, k = dm.rows("train"), int(cfg.task.per_class)
    rng = np.random.default_rng(cfg.seed)
    # each cell at the images' own aspect ratio, the rows packed (no band of white above or between)
    h, w = dm.image_size
    shapes: list[tuple[int, ...]] = []
    cell = 1.0
    fig = plt.figure(figsize=(2 * k * cell, L.NUM_CLASSES * (cell * h / w + 0.25) + 0.4), layout="constrained")
    axes = fig.subplots(L.NUM_CLASSES, 2 * k, squeeze=False)
    for c in track(range(L.NUM_CLASSES), L.NUM_CLASSES, "preview", "classes"):
        rows = table[table.label == c]
        persons = rng.permutation(rows.person.unique())[:k]
        for j in range(k):
            for side, tf in enumerate((dm.val_tf, dm.train_tf)):
                ax = axes[c, j + side * k]
                ax.axis("off")
                if j < len(persons):
                    path = rows[rows.person == persons[j]].image.iloc[0]
                    rgb = read_rgb(path)
                    shapes.append(rgb.shape)
                    ax.imshow(tf(image=rgb)["image"], aspect="equal")
            axes[c, 0].set_title(short_name(c), fontsize=6, loc="left")
        if not len(persons):  # said, not a silent empty row
            axes[c, 0].text(0.0, 0.5, "no training image of this class", fontsize=6, transform=axes[c, 0].transAxes)
    fig.suptitle(f"left {k}: resized to {list(dm.image_size)}; right {k}: the same persons as training augments them",
                 fontsize=7)
    path = save(fig, out / "preview.png")
    log.info("preview of %d classes x %d persons -> %s", L.NUM_CLASSES, k, path)
    _aspect_note(shapes, (h, w))


def _aspect_note(shapes: list[tuple[int, ...]], size: tuple[int, int]) -> None:
    """One line where the photos' shape differs from ``data.image_size``'s: the resize squeezes
    them (a square face at the default 256 x 192 is a narrow one), and the preview shows it."""
    if not shapes:
        return
    photo = float(np.median([s[0] / s[1] for s in shapes]))  # H / W of the photos drawn
    model = size[0] / size[1]
    if abs(photo / model - 1) > 0.1 + 1e-9:  # 10% off still passes
        hint = [int(round(size[1] * photo / 8) * 8) or 8, size[1]]
        log.warning("the photos are %.2f:1 (H:W) and data.image_size=%s is %.2f:1: the resize stretches them "
                    "(as the preview shows); data.image_size=[%d, %d] keeps about their shape", photo, list(size), model,
                    *hint)
