"""Which recipes help on real faces: the default against one change at a time, and the plain loop.

Every arm is a `python run.py ...` command as a user types it (plus the regime's size options),
trained on the persons of ROOT/train (model selection on fold 0 of 5 stratified person folds,
chosen by ``data.split_seed`` = the seed), then scored on the eval answers, separately on the two
halves of the eval persons (bench/eval_split.py): choices are made on the *selection* half, the
reported figures are the *confirmation* half's. ``plain`` is bench/plain_loop.py, written
without mask_cls (its validation persons are the same fold). Each finished arm appends one row
to the results file (default OUT/results.csv) with the command, the commit and the split's
digest, so a stopped benchmark continues where it stopped and every figure traces to a run;
bench/realfaces_report.py renders BENCHMARKS.md's tables from that file.

    python bench/recipes.py ROOT --answers KEY --out DIR [--results FILE] [--regime scratch|pretrained]
        [--arms default,plain,...] [--seeds 0 1 2] [--quick]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, parser  # noqa: E402
from eval_split import digest, load_or_make  # noqa: E402
from plain_loop import task_f1  # noqa: E402
from realfaces_report import figure, render  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
#: the conditions of each regime (what every arm shares)
REGIMES: dict[str, list[str]] = {
    "scratch": ["model.backbone=resnet10t", "data.image_size=[96,96]", "data.batch_size=64", "trainer.max_epochs=8"],
    "pretrained": ["model=lite0_pretrained", "data.image_size=[96,96]", "data.batch_size=64", "trainer.max_epochs=4"],
    # the 384x512 frames of bench/canvas.py (ROOT = its copy): the whole frame against face crops
    "canvas": ["model=lite0_pretrained", "data.image_size=[128,96]", "data.batch_size=64", "trainer.max_epochs=4"],
}
#: one change at a time against the default recipe (the empty list); "plain" is the plain loop
ARMS: dict[str, list[str]] = {
    "default": [],
    "plain": [],
    "no_tta": ["tta=[none]"],
    "lr_3e-3": ["optim.lr=3e-3"],
    "onecycle": ["sched=onecycle"],
    "wd_0.05": ["optim.weight_decay=0.05"],
    "flip_only": ["augment=flip"],
    "augment_light": ["augment=light"],
    "plain_like": ["optim.lr=3e-3", "optim.weight_decay=0.05", "sched=onecycle", "augment=flip"],
    "dropout_0.2": ["model.dropout=0.2"],
    "seed_arcface": ["head=arcface", "loss=focal", "loss.class_weights=inverse_log1p"],
    "smoothing": ["loss=smoothing"],
    "multitask": ["head=multitask"],
    "age58": ["data.age_threshold=58"],
    "age59": ["data.age_threshold=59"],
    "weighted": ["sampler=weighted"],
    "sqrt": ["sampler=sqrt"],
    "person_balanced": ["sampler=person_balanced"],
    # the seed solution's augmentations, one step at a time: its 16 transforms instead of light's
    # 3, then + vertical CutMix, then + grid shuffle (= augment=seed_cutmix)
    "seed_augment": ["augment=seed"],
    "seed_cutmix_only": ["augment=seed_cutmix", "augment.batch.grid_shuffle.p=0"],
    "seed_cutmix": ["augment=seed_cutmix"],
    "ema": ["callbacks=ema"],
    "keep_last": [],  # task.keep=last, scored on the default run's last.ckpt (PREDICT_CHECKPOINT)
    # the default run's best checkpoint predicted without its temperature: keep_last's like-with-like
    # reference (last.ckpt is predicted uncalibrated: the temperature was fitted for the best one)
    "best_uncalibrated": ["task.calibrate=false"],
    # the epoch of the lowest val/loss (trained again with the default's seed: the same model
    # sequence on CPU, another epoch kept, calibrated for it as the default is)
    "keep_loss": ["task.keep=loss"],
    "lite1": ["model=lite1_pretrained"],  # the offline backbone ladder (pretrained regime: against Lite0)
    "lite2": ["model=lite2_pretrained"],
    # SWA from half-way: Lightning averages the weights at the start of each SWA epoch, so in a
    # 4-epoch regime the default start (0.75) averages two snapshots; 0.5 averages three (tests/test_swa.py)
    "swa": ["callbacks=swa", "callbacks.swa.swa_epoch_start=0.5"],
    "uda": ["ssl=uda", "unlabeled=eval"],
    "pseudo": [],    # teacher (default) -> task=pseudo on the eval images (threshold 0.9) -> student with them
    "real_best": ["experiment=real_best"],  # its teacher (= the age58 arm) -> pseudo-labels -> student
    "age58_smoothing": ["data.age_threshold=58", "loss=smoothing"],
    "real_best_smoothing": ["experiment=real_best", "loss=smoothing"],  # teacher: the age58_smoothing arm
    "ensemble": [],  # task=cv: the fold ensemble's submission (val figure: the out-of-fold cv/f1)
    "pseudo_t0.98": [],  # the pseudo round with fewer, surer labels (task.threshold=0.98)
    "pseudo_t0.7": [],   # ... with more, noisier labels (task.threshold=0.7)
    "real_best_t0.7": ["experiment=real_best"],  # real_best's round at threshold 0.7 (teacher: age58)
    "age58_ensemble": ["data.age_threshold=58"],  # task=cv of the age58 arm
    "real_best_ensemble": ["experiment=real_best"],  # its teacher (= age58_ensemble) -> per-fold labels -> task=cv
    "face_crop": [],  # task=prepare (YuNet face crops of ROOT's train and eval images) -> the default on the crops
    "teachers": [],  # the soft vote of the TEACHERS arms' runs (task=predict): the ensemble a student distils
    "distill": [],   # task=distill teacher=[the TEACHERS arms' runs]: one default student on their soft targets
}
#: arms that are a fold ensemble (task=cv): its submission is the folds' soft vote, its
#: validation figure the out-of-fold cv/f1; a pseudo round of one keeps each fold's own labels
#: (``data.pseudo_csv=<labels folder>``: fold k learns only from fold k's teacher, so the CV stays honest)
CV_ARMS = {"ensemble", "age58_ensemble", "real_best_ensemble"}
#: arms that are a pseudo-label round: the arm whose run of the same seed is the teacher (the
#: same options as the arm, so a finished run of it is reused)
PSEUDO_ROUNDS = {"pseudo": "default", "real_best": "age58", "real_best_smoothing": "age58_smoothing",
                 "pseudo_t0.98": "default", "pseudo_t0.7": "default", "real_best_t0.7": "age58",
                 "real_best_ensemble": "age58_ensemble"}
#: options of a pseudo round's labelling step (task=pseudo) only
PSEUDO_OPTIONS = {"pseudo_t0.98": ["task.threshold=0.98"], "pseudo_t0.7": ["task.threshold=0.7"],
                  "real_best_t0.7": ["task.threshold=0.7"]}
#: arms that differ from another arm only at prediction: its finished run of the same seed
#: predicts again with the arm's options (the same trained model, so the difference is exact)
PREDICT_ONLY = {"no_tta": "default", "keep_last": "default", "best_uncalibrated": "default"}
#: of those, the ones that predict with another checkpoint of that run: keep_last is task.keep=last
#: (the schedule's final model) on the very run whose best-validation checkpoint the default keeps
PREDICT_CHECKPOINT = {"keep_last": "checkpoints/last.ckpt"}
#: arms built on other arms' finished runs of the same seed (same split, so their models never saw
#: the student's validation persons): their ensemble (task=predict) and a student distilled from it
TEACHERS = {"teachers": ["default", "age58", "swa"], "distill": ["default", "age58", "swa"]}
#: arms that train on a face-cropped copy of ROOT (task=prepare with these options, written once
#: per regime beside the arm's runs and shared by its seeds; prepare resumes a partial copy)
PREPARED = {"face_crop": ["task.detector=yunet"]}
QUICK = ["data.image_size=[32,32]", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
         "trainer.limit_val_batches=2"]
QUICK_CV = ["data.n_folds=2"]


def commit() -> str:
    """The checkout's commit, with "+dirty" when tracked files differ from it."""
    head = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "mask_cls", "conf", "run.py", "bench",
                            ":(exclude)bench/results"], cwd=REPO).returncode
    return head + ("+dirty" if dirty else "")


def halves_scores(sub: pd.DataFrame, answers: Path, split: pd.DataFrame) -> dict[str, float]:
    """Macro F1 (and per task) of a submission on the whole key and on each half of the persons."""
    key = pd.read_csv(answers).set_index("ImageID")["ans"]
    half = split.set_index("ImageID")["half"].loc[sub.ImageID].to_numpy()
    y, p = key.loc[sub.ImageID].to_numpy(), sub.ans.to_numpy()
    out = task_f1(y, p)
    for h, short in (("selection", "sel"), ("confirmation", "conf")):
        for k, v in task_f1(y[half == h], p[half == h]).items():
            out[f"{k}_{short}"] = v
    return out


def run_arm(arm: str, regime: str, seed: int, root: Path, answers: Path, out: Path, quick: bool,
            split: pd.DataFrame) -> dict:
    """Train one arm with one seed; its eval scores (whole key and per half), seconds and command."""
    t0 = time.perf_counter()
    commands: list[str] = []
    if arm == "plain":
        cmd = [sys.executable, str(REPO / "bench" / "plain_loop.py"), str(root), "--out", str(out),
               "--seed", str(seed), "--answers", str(answers)]
        opts = dict(o.split("=", 1) for o in REGIMES[regime])
        size = opts["data.image_size"].strip("[]").split(",")
        cmd += ["--epochs", opts["trainer.max_epochs"], "--size", *size, "--batch", opts["data.batch_size"]]
        cmd += ["--pretrained-lite0"] if regime == "pretrained" else ["--backbone", opts["model.backbone"]]
        cmd += ["--epochs", "1", "--size", "32", "32"] if quick else []  # later options win
        commands.append(" ".join(["python", *[str(Path(c).relative_to(REPO)) if c.startswith(str(REPO)) else c for c in cmd[1:]]]))
        subprocess.run(cmd, check=True, cwd=REPO)
        scores = halves_scores(pd.read_csv(out / "submission.csv"), answers, split)
        scores["val_f1_best"] = json.loads((out / "scores.json").read_text()).get("val_f1_best")
        scores |= {"kept": "best", "calibrated": False}  # the plain loop keeps its best-validation epoch
    else:
        cv = ["task=cv"] if arm in CV_ARMS else []

        data_root = root
        if arm in PREPARED:  # the arm's data: a face-cropped copy of ROOT
            data_root = out.parent / "data"
            cmd = [sys.executable, str(REPO / "run.py"), "task=prepare", "data=mask", f"data.root={root}",
                   f"task.out={data_root}", f"hydra.run.dir={out.parent / f'prepare_{out.name}'}", *PREPARED[arm]]
            commands.append(" ".join(["python run.py", *cmd[2:]]))
            subprocess.run(cmd, check=True, cwd=REPO, env={**os.environ, "WANDB_MODE": "disabled"})

        def mask_cls(run_dir: Path, *extra: str) -> None:
            cmd = [sys.executable, str(REPO / "run.py"), "data=mask", f"data.root={data_root}", f"seed={seed}",
                   f"data.split_seed={seed}", "data.num_workers=2", "trainer.enable_progress_bar=false",
                   f"hydra.run.dir={run_dir}", *REGIMES[regime], *ARMS.get(arm, []), *extra,
                   *(QUICK if quick else []), *(QUICK_CV if quick and cv else [])]
            commands.append(" ".join(["python run.py", *cmd[2:]]))
            subprocess.run(cmd, check=True, cwd=REPO, env={**os.environ, "WANDB_MODE": "disabled"})

        if arm in PSEUDO_ROUNDS:  # the teacher labels the eval images; a new model trains with them too
            teacher = finished_run(out, PSEUDO_ROUNDS[arm], seed)
            if teacher is None:
                teacher = out / "teacher"
                mask_cls(teacher, *cv)
            mask_cls(out / "labels", "task=pseudo", f"run_dir={teacher}", "unlabeled=eval", *PSEUDO_OPTIONS.get(arm, []))
            final = out / "student"
            mask_cls(final, f"data.pseudo_csv={out / 'labels'}", *cv)
        elif arm in TEACHERS:
            runs = [finished_run(out, a, seed) for a in TEACHERS[arm]]
            if any(r is None for r in runs):
                raise SystemExit(f"arm {arm}: run the arms {','.join(TEACHERS[arm])} with seed {seed} first")
            final, listed = out, "[" + ",".join(str(r) for r in runs) + "]"
            mask_cls(final, *(["task=distill", f"teacher={listed}"] if arm == "distill" else
                              ["task=predict", f"run_dir={listed}"]))
        elif arm in PREDICT_ONLY and (trained := finished_run(out, PREDICT_ONLY[arm], seed)) is not None:
            final = out
            mask_cls(final, "task=predict", f"run_dir={trained / PREDICT_CHECKPOINT.get(arm, '')}".rstrip("/"))
        else:
            final = out
            mask_cls(final, *cv)
        scores = halves_scores(pd.read_csv(final / "submission.csv"), answers, split)
        result = final / ("cv.json" if cv else "metrics.json")
        if not result.is_file() and arm in PREDICT_ONLY:  # the model (and its validation) is the trained run's
            result = finished_run(out, PREDICT_ONLY[arm], seed) / "metrics.json"
        scores["val_f1_best"] = json.loads(result.read_text()).get("cv/f1" if cv else "val/f1_best") \
            if result.is_file() else None  # (an ensemble's prediction: no validation of its own)
        scores |= submission_kind(final, result)
        if arm in PREDICT_CHECKPOINT:  # the model kept is the last epoch's, its validation figure its own val/f1
            scores |= {"kept": "last", "val_f1_best": json.loads(result.read_text()).get("val/f1")}
    return {"regime": regime, "arm": arm, "seed": seed, **scores,
            "seconds": round(time.perf_counter() - t0, 1), "run": str(out), "commit": commit(),
            "split": digest(split), "date": time.strftime("%Y-%m-%d"), "command": " && ".join(commands)}


def submission_kind(final: Path, result: Path) -> dict:
    """Which model made the submission (``kept``: best, last or swa, from metrics.json) and whether
    it was calibrated (the run's temperatures applied): a row compares like with like only where
    both agree."""
    metrics = result.parent / "metrics.json" if result.name == "cv.json" else result
    folds = sorted(final.glob("fold_*/metrics.json"))
    metrics = metrics if metrics.is_file() else (folds[0] if folds else metrics)
    kept = json.loads(metrics.read_text()).get("kept", "best") if metrics.is_file() else "?"
    log = final / "run.log"  # task=predict says so when it applies a run's temperatures
    own = [final / "calibration.json", *final.glob("fold_*/calibration.json")]  # applied unless it says not
    calibrated = any(f.is_file() and json.loads(f.read_text()).get("applied", True) for f in own) or \
        (log.is_file() and "calibrated: temperatures" in log.read_text(errors="replace"))
    return {"kept": kept, "calibrated": bool(calibrated)}


def finished_run(out: Path, arm: str, seed: int) -> Path | None:
    """The finished run of ``arm`` in this regime with this seed (a pseudo round's teacher), if any."""
    for run in sorted((out.parents[1] / arm).glob(f"seed{seed}*")):
        if (run / "submission.csv").is_file() and ((run / "checkpoints").is_dir() or (run / "cv.json").is_file()):
            return run
    return None


def pseudo_report(out: Path, regime: str, answers: Path) -> pd.DataFrame:
    """Per pseudo-label round: images kept, the teacher's mean confidence on them, how many of
    the kept labels are right (on the answer key; "val right": the estimate task=pseudo made
    on the teacher's validation persons, when the teacher kept its predictions), and the
    oldest age group kept vs true."""
    key = pd.read_csv(answers).set_index("ImageID")["ans"]
    rows = []
    for arm in PSEUDO_ROUNDS:
        for labels in sorted((out / "runs" / regime / arm).glob("seed*/labels")):
            info = json.loads((labels / "pseudo.json").read_text())
            kept = pd.read_csv(labels / "pseudo.csv")
            truth = key.loc[kept["image"].map(lambda p: Path(p).name)].to_numpy()
            rows.append({"arm": arm, "run": labels.parent.name, "threshold": info["threshold"], "kept": len(kept),
                         "of": info["images"],
                         "confidence": kept["confidence"].mean(), "right": (truth == kept["label"]).mean(),
                         "val right": (info.get("validation") or {}).get("right"),
                         "old kept": int((kept["label"] % 3 == 2).sum()), "old true": int((truth % 3 == 2).sum())})
    return pd.DataFrame(rows)


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("root", type=Path)
    p.add_argument("--answers", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--results", type=Path, help="the results file rows are appended to (default OUT/results.csv)")
    p.add_argument("--regime", choices=sorted(REGIMES), default="scratch")
    p.add_argument("--arms", default="default,plain", help=f"comma-separated, of: {','.join(ARMS)}")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--root-name", default="REALFACES", help="how ROOT is written in the recorded commands")
    args = p.parse_args()
    arms = args.arms.split(",")
    unknown = sorted(set(arms) - set(ARMS))
    if unknown:
        p.error(f"unknown arms {unknown}; known: {', '.join(ARMS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    csv = args.results or args.out / "results.csv"
    split = load_or_make(args.out / "eval_split.csv", args.root, args.answers)
    done = pd.read_csv(csv) if csv.exists() else pd.DataFrame(columns=["regime", "arm", "seed"])
    for seed in args.seeds:  # seeds outermost: a partial benchmark still compares every arm
        for arm in arms:
            if ((done.regime == args.regime) & (done.arm == arm) & (done.seed == seed)).any():
                continue
            run_dir = args.out / "runs" / args.regime / arm / f"seed{seed}"
            if run_dir.exists():  # an interrupted earlier attempt: a run never reuses a folder
                run_dir = run_dir.with_name(f"seed{seed}_{time.strftime('%H%M%S')}")
            row = run_arm(arm, args.regime, seed, args.root, args.answers, run_dir, args.quick, split)
            for path, name in ((args.answers, "KEY"), (args.root, args.root_name), (args.out, "OUT")):  # as typed anywhere
                row["command"] = row["command"].replace(str(path), name)
            row["run"] = str(Path(row["run"]).relative_to(args.out))
            print(json.dumps(row), flush=True)
            done = pd.concat([done, pd.DataFrame([row])], ignore_index=True)
            tmp = csv.with_suffix(".tmp")
            done.to_csv(tmp, index=False)
            tmp.replace(csv)
    print(f"\nrecipes on {args.root} ({args.regime}); machine: {machine()}")
    mine = done[done.regime == args.regime]
    print(render(mine))
    print(f"figure: {figure(mine, args.regime, args.out / f'recipes_{args.regime}.png')}")
    report = pseudo_report(args.out, args.regime, args.answers)
    if len(report):
        print("\npseudo-labels of each round (on the answer key):")
        print(report.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
