"""The baseline arm of bench/recipes.py: a plain PyTorch loop, written without mask_cls.

What a competitor writes in an evening: an 80/20 split by person, every image decoded once into
memory, horizontal flip as the only augmentation, cross-entropy, AdamW (weight decay 0.05) with a
one-cycle schedule, the best validation epoch kept, hflip TTA on the eval set. It reads the
competition layout by itself (only the pretrained weights file goes through mask_cls's converter,
which tests/test_weights.py checks against an independent network).

    python bench/plain_loop.py ROOT --out DIR [--backbone resnet10t] [--size 96 96] [--epochs 8]
        [--seed 0] [--lr 3e-3] [--pretrained-lite0]

Writes DIR/submission.csv (ImageID,ans in info.csv order) and DIR/scores.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import timm
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.metrics import f1_score

MASK = {"mask1": 0, "mask2": 0, "mask3": 0, "mask4": 0, "mask5": 0, "incorrect_mask": 1, "normal": 2}


def load(paths: list[Path], size: tuple[int, int]) -> torch.Tensor:
    """uint8 NCHW tensor of the images resized to ``size`` = (H, W)."""
    out = torch.empty(len(paths), 3, *size, dtype=torch.uint8)
    for i, p in enumerate(paths):
        im = Image.open(p).convert("RGB").resize((size[1], size[0]), Image.BILINEAR)
        out[i] = torch.from_numpy(np.asarray(im)).permute(2, 0, 1)
    return out


def train_table(root: Path) -> tuple[list[Path], np.ndarray, pd.DataFrame]:
    """Image paths, 18-class labels and person index of every training image."""
    persons = pd.read_csv(root / "train" / "train.csv", dtype={"id": str})
    paths, labels, who = [], [], []
    for row in persons.itertuples():
        g = 0 if row.gender == "male" else 1
        a = 0 if row.age < 30 else (1 if row.age < 60 else 2)
        for f in sorted((root / "train" / "images" / row.path).iterdir()):
            if f.stem in MASK and not f.name.startswith("."):
                paths.append(f)
                labels.append(6 * MASK[f.stem] + 3 * g + a)
                who.append((row.path, g, int(row.age)))
    return paths, np.array(labels), pd.DataFrame(who, columns=["person", "gender", "age"])


def task_f1(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Macro F1 of the 18 classes and of each task (mask, gender, age)."""
    f = lambda a, b: float(f1_score(a, b, average="macro"))  # noqa: E731
    return {"f1": f(y, p), "mask_f1": f(y // 6, p // 6), "gender_f1": f((y // 3) % 2, (p // 3) % 2),
            "age_f1": f(y % 3, p % 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--answers", type=Path, help="ImageID,ans key of the eval set: scores.json gets eval figures")
    ap.add_argument("--backbone", default="resnet10t")
    ap.add_argument("--size", type=int, nargs=2, default=[96, 96])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pretrained-lite0", action="store_true", help="tf_efficientnet_lite0 from the package's weights")
    args = ap.parse_args()
    t0 = time.perf_counter()
    torch.manual_seed(args.seed)
    size = tuple(args.size)
    paths, y, who = train_table(args.root)
    # the validation persons of mask_cls's run with data.split_seed=seed: fold 0 of its 5
    # stratified person folds (the one thing taken from mask_cls, so both select on the same persons)
    from mask_cls.data.folds import assign_folds
    is_val = (assign_folds(who, 5, args.seed) == 0).to_numpy()
    x = load(paths, size)
    y = torch.from_numpy(y)
    tr, va = np.flatnonzero(~is_val), np.flatnonzero(is_val)

    if args.pretrained_lite0:
        from mask_cls.models.weights import lite0_file, load_backbone_weights
        net = timm.create_model("tf_efficientnet_lite0", num_classes=0)  # the backbone the weights hold
        load_backbone_weights(net, lite0_file())
        net.reset_classifier(18)
        mean, std = [0.5] * 3, [0.5] * 3
    else:
        net = timm.create_model(args.backbone, num_classes=18)
        mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    mean = torch.tensor(mean).view(1, 3, 1, 1) * 255
    std = torch.tensor(std).view(1, 3, 1, 1) * 255
    norm = lambda b: (b.float() - mean) / std  # noqa: E731

    def predict(images: torch.Tensor) -> torch.Tensor:
        net.eval()
        with torch.no_grad():
            return torch.cat([(net(norm(b)).softmax(1) + net(norm(b).flip(3)).softmax(1)) / 2
                              for b in images.split(256)])

    steps = args.epochs * (len(tr) // args.batch)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps)
    best, best_state = -1.0, None
    for epoch in range(args.epochs):
        net.train()
        order = tr[torch.randperm(len(tr)).numpy()]
        for i in range(len(tr) // args.batch):
            idx = order[i * args.batch:(i + 1) * args.batch]
            b = norm(x[idx])
            flip = torch.rand(len(idx)) < 0.5
            b[flip] = b[flip].flip(3)
            loss = F.cross_entropy(net(b), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        f1 = task_f1(y[va].numpy(), predict(x[va]).argmax(1).numpy())["f1"]
        print(f"epoch {epoch}: val f1 {f1:.4f}", flush=True)
        if f1 > best:
            best, best_state = f1, {k: v.clone() for k, v in net.state_dict().items()}
    net.load_state_dict(best_state)

    info = pd.read_csv(args.root / "eval" / "info.csv")
    pred = predict(load([args.root / "eval" / "images" / i for i in info.ImageID], size)).argmax(1).numpy()
    args.out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"ImageID": info.ImageID, "ans": pred}).to_csv(args.out / "submission.csv", index=False)
    scores = {"val_f1_best": best, "seconds": round(time.perf_counter() - t0, 1)}
    if args.answers:
        key = pd.read_csv(args.answers).set_index("ImageID").loc[info.ImageID, "ans"].to_numpy()
        scores.update(task_f1(key, pred))
    (args.out / "scores.json").write_text(json.dumps(scores, indent=1))
    print(json.dumps(scores))


if __name__ == "__main__":
    main()
