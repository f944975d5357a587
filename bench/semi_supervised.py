"""Semi-supervised learning with few labels: supervised-only against pseudo-labels and UDA.

A synthetic set in the competition layout; a share of its persons (default 10%) keeps its
labels, the images of the others form an unlabeled folder. Every arm trains the same model
for the same epochs and optimiser steps (the labeled set's batches per epoch):

- supervised: the labeled persons only (one fold held out to pick the best epoch);
- pseudo: the supervised model of the same seed labels the unlabeled folder (TTA none+hflip,
  kept at confidence >= --threshold); a new model trains on labeled + pseudo rows, drawing
  as many images per epoch as the labeled set has;
- uda: ssl=uda with the unlabeled folder (conf/ssl/uda.yaml defaults, --unsup-ratio);
- uda_tsa: the same with Training Signal Annealing (ssl.tsa=linear).

Each model is scored by macro F1 on the eval set's answer key (never seen in training);
the table shows the mean and spread over seeds (each seed draws its own labeled persons) and
the ratio to supervised.

    python bench/semi_supervised.py [--quick] [--persons 600] [--labeled 0.1] [--epochs 40] [--seeds 3]
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, parser  # noqa: E402

from mask_cls.data import pseudo  # noqa: E402
from mask_cls.data.synthetic import SynthConfig, generate  # noqa: E402
from mask_cls.data.unlabeled import folder_images  # noqa: E402
from mask_cls.engine import fit_fold, in_dir  # noqa: E402
from mask_cls.evaluation.metrics import score  # noqa: E402
from mask_cls.inference.predict import predict_paths  # noqa: E402
from mask_cls.io import write_csv  # noqa: E402
from mask_cls.resolvers import register  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ARMS = ("pseudo", "uda", "uda_tsa")


def split_persons(full: Path, work: Path, share: float, seed: int) -> tuple[Path, Path]:
    """A labeled layout (train.csv of ``share`` of the persons; images linked, not copied)
    and an unlabeled folder with the other persons' images (hard links where possible)."""
    table = pd.read_csv(full / "train" / "train.csv", dtype=str)
    rng = np.random.default_rng(seed)
    n = max(4, round(share * len(table)))
    chosen = np.zeros(len(table), dtype=bool)
    chosen[rng.choice(len(table), n, replace=False)] = True
    lab = work / "labeled"
    (lab / "train").mkdir(parents=True)
    table[chosen].to_csv(lab / "train" / "train.csv", index=False)
    os.symlink(full / "train" / "images", lab / "train" / "images")
    unl = work / "unlabeled"
    for person in table["path"][~chosen]:
        (unl / person).mkdir(parents=True)
        for f in (full / "train" / "images" / person).iterdir():
            if not f.name.startswith("."):
                try:
                    os.link(f, unl / person / f.name)
                except OSError:
                    shutil.copy(f, unl / person / f.name)
    return lab, unl


def config(lab: Path, out: Path, seed: int, args, *extra: str):
    overrides = [
        "data=mask", f"data.root={lab}", "data.image_size=[64,48]", f"data.batch_size={args.batch}",
        "data.num_workers=0", "data.persistent_workers=false", f"data.n_folds={args.folds}", "data.fold=0",
        f"data.split_seed={seed}", f"model.backbone={args.backbone}", "model.channels_last=true",
        f"optim.lr={args.lr}", f"trainer.max_epochs={args.epochs}", "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "logger=none",
        "callbacks.lr_monitor=null", f"seed={seed}", f"paths.root_dir={lab.parent}", f"paths.output_dir={out}",
        *extra]
    cfg = compose("config", overrides=overrides)
    return in_dir(cfg, out)


def eval_f1(module, full: Path) -> float:
    answers = pd.read_csv(full / "eval_answers.csv")
    info = pd.read_csv(full / "eval" / "info.csv").merge(answers, on="ImageID", suffixes=("_", ""))
    probs = predict_paths(module, [str(full / "eval" / "images" / i) for i in info["ImageID"]], ["none"],
                          num_workers=0)
    return score(info["ans"], probs.argmax(1))["f1"]


def run_seed(full: Path, work: Path, seed: int, args) -> dict[str, tuple[float, float]]:
    lab, unl = split_persons(full, work, args.labeled, seed)
    results = {}
    t = time.perf_counter()
    sup = fit_fold(config(lab, work / "sup", seed, args), work / "sup")
    results["supervised"] = (eval_f1(sup.module, full), time.perf_counter() - t)

    if "pseudo" in args.arms:
        results["pseudo"] = pseudo_arm(full, unl, work, seed, args, sup, results["supervised"][1])

    for arm, extra in (("uda", []), ("uda_tsa", ["ssl.tsa=linear"])):
        if arm in args.arms:
            t = time.perf_counter()
            uda = fit_fold(config(lab, work / arm, seed, args, "ssl=uda", f"unlabeled={unl}",
                                  f"ssl.unsup_ratio={args.unsup_ratio}", *extra), work / arm)
            results[arm] = (eval_f1(uda.module, full), time.perf_counter() - t)
    return results


def pseudo_arm(full: Path, unl: Path, work: Path, seed: int, args, sup, sup_seconds: float) -> tuple[float, float]:
    """The supervised model labels the unlabeled folder; a new model trains on both."""
    lab = Path(sup.dm.root)
    t = time.perf_counter()
    paths = folder_images(unl)
    probs = predict_paths(sup.module, paths, ["none", "hflip"], num_workers=0)
    rows = pseudo.pseudo_table(paths, probs, pseudo.select(probs, args.threshold))
    write_csv(rows, work / "pseudo.csv")
    truth = true_labels(full, unl, rows["image"])
    n_labeled = len(sup.dm.train_table)
    student = fit_fold(config(lab, work / "pseudo", seed, args, f"data.pseudo_csv={work / 'pseudo.csv'}",
                              "sampler=person_balanced", "sampler.max_repeat=1",
                              f"sampler.epoch_length={n_labeled}"), work / "pseudo")
    # the teacher's time counts too: the pseudo arm needs the supervised run first
    accuracy = float((truth == rows["label"].to_numpy()).mean()) if len(rows) else float("nan")
    print(f"  seed {seed}: {len(rows)} of {len(paths)} unlabeled images pseudo-labeled at >= {args.threshold}, "
          f"{accuracy:.1%} of them correctly", flush=True)
    return eval_f1(student.module, full), time.perf_counter() - t + sup_seconds


def true_labels(full: Path, unl: Path, images) -> np.ndarray:
    """The hidden labels of unlabeled images (the benchmark knows them; training never does)."""
    from mask_cls.data.layouts.competition.tables import read_train

    table = read_train(full, check_images=False)
    label = {(r.person, Path(r.image).name): r.label for r in table.itertuples()}
    return np.array([label[(Path(p).parent.name, Path(p).name)] for p in images], dtype=int)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--persons", type=int, default=600, help="persons in the synthetic training set")
    p.add_argument("--eval-persons", type=int, default=100)
    p.add_argument("--labeled", type=float, default=0.1, help="share of persons that keep their labels")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--backbone", default="mobilenetv3_small_050")
    p.add_argument("--threshold", type=float, default=0.7, help="pseudo-label confidence threshold")
    p.add_argument("--unsup-ratio", type=int, default=3)
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS,
                   help="arms besides supervised (always run: it is the baseline and the teacher)")
    args = p.parse_args()
    if args.quick:
        args.persons, args.eval_persons, args.labeled, args.epochs = 24, 3, 0.25, 1
        args.seeds, args.folds, args.batch, args.unsup_ratio = 1, 2, 16, 1
    os.environ.setdefault("WANDB_MODE", "disabled")
    register()
    with tempfile.TemporaryDirectory(prefix="mask_cls_ssl_") as tmp:
        full = Path(tmp) / "full"
        generate(full, SynthConfig(train_persons=args.persons, eval_persons=args.eval_persons, image_size=(64, 48),
                                   seed=0, workers=0), progress=False)
        per_arm: dict[str, list[tuple[float, float]]] = {}
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            for seed in range(args.seeds):
                for arm, value in run_seed(full, Path(tmp) / f"seed{seed}", seed, args).items():
                    per_arm.setdefault(arm, []).append(value)
    base = statistics.mean(f for f, _ in per_arm["supervised"])
    print(f"\nsemi-supervised: {args.labeled:.0%} of {args.persons} persons labeled, {args.epochs} epochs, "
          f"{args.backbone} at 64x48, eval on {args.eval_persons} persons, {args.seeds} seed(s)")
    print(f"machine: {machine()}")
    print(f"{'arm':<14}{'macro F1':>10}{'+-':>8}{'ratio':>9}{'seconds':>10}   per seed")
    for arm, values in per_arm.items():
        f1s = [f for f, _ in values]
        spread = statistics.stdev(f1s) if len(f1s) > 1 else 0.0
        ratio = statistics.mean(f1s) / base if base > 0 else float("nan")
        print(f"{arm:<14}{statistics.mean(f1s):>10.4f}{spread:>8.4f}{ratio:>8.2f}x"
              f"{statistics.mean(s for _, s in values):>10.1f}   {' '.join(f'{f:.4f}' for f in f1s)}")


if __name__ == "__main__":
    main()
