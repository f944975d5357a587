"""The first minute: a line at once, mistakes caught before the heavy imports (one line with the
fix), progress in a log file, a console without noise."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import FAST, ROOT, run_cli

#: run.py as typed, reporting at exit whether torch was ever imported
PROBE = ("import atexit, runpy, sys\n"
         "atexit.register(lambda: print('TORCH ' + str('torch' in sys.modules), file=sys.stderr))\n"
         "sys.argv = ['run.py', *sys.argv[1:]]\n"
         "runpy.run_path(sys.argv[0], run_name='__main__')\n")


def probe(*overrides: str, cwd=None) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "WANDB_MODE": "disabled"}
    return subprocess.run([sys.executable, "-c", PROBE, *overrides], cwd=cwd or ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def _mistakes(tiny_root, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_root, broken)
    csv = broken / "train" / "train.csv"
    csv.write_text(csv.read_text().replace("gender", "sex", 1))
    table = tmp_path / "t.csv"
    table.write_text("path,kind\na.jpg,1\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    return {
        "wrong root": (["data=mask", f"data.root={tmp_path / 'nowhere'}"], "nowhere: data.root not found"),
        "cv, wrong root": (["task=cv", "data=mask", f"data.root={tmp_path / 'nowhere'}"], "data.root not found"),
        "preview, wrong root": (["task=preview", "data=mask", f"data.root={tmp_path / 'no'}"], "data.root not found"),
        "no root": (["data=mask"], "data=mask needs data.root="),
        "a typo in the root": (["data=mask", f"data.root={tiny_root.parent / 'tinny'}"],
                               f"data.root not found (did you mean data.root={tiny_root}?)"),
        "the train folder as root": (["data=mask", f"data.root={tiny_root / 'train'}"],
                                     f"this is the train folder of the data; data.root is its parent: data.root={tiny_root}"),
        "a look-alike in the backbone": (["data=mask", f"data.root={tiny_root}", "model.backbone=efficientnet_bo"],
                                         "is not a timm model (did you mean: efficientnet_b0,"),
        "a missing column": (["data=mask", f"data.root={broken}"], "train.csv: missing column(s) gender"),
        "a misspelt backbone": (["data=mask", f"data.root={tiny_root}", "model.backbone=resnet10"],
                                "is not a timm model (did you mean: resnet10t,"),
        "a misspelt key": (["trainer.max_epoch=3"], "trainer.max_epoch: no such key; did you mean trainer.max_epochs=3?"),
        "a misspelt option": (["data=maks"], "data=maks: no such option of data (options: folder, mask, synthetic, table); "
                                             "did you mean data=mask?"),
        "a table without labels": (["data=table", f"data.csv={table}"], "missing column(s) mask, gender, age"),
        "a folder that is not a run": (["task=predict", f"run_dir={tmp_path}", "data=mask", f"data.root={tiny_root}"],
                                       "no train run (metrics.json), cv run (fold_*/) or .ckpt file there"),
        "pseudo from nowhere": (["task=pseudo", f"run_dir={tmp_path / 'gone'}"], "run_dir="),
        "a submission that is a folder": (["task=evaluate", f"submission={sub}", f"answers={sub}"],
                                          "is a folder; give the CSV file in it"),
    }


@pytest.mark.slow
def test_mistakes_are_one_line_before_torch_loads(tiny_root, tmp_path):
    for name, (overrides, message) in _mistakes(tiny_root, tmp_path).items():
        run = tmp_path / "runs" / re.sub(r"\W", "_", name)
        r = probe(*overrides, f"hydra.run.dir={run}")
        errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
        assert r.returncode == 1 and len(errors) == 1 and message in errors[0], (name, r.stderr[-2000:])
        assert "TORCH False" in r.stderr, f"{name}: torch was imported before the mistake was reported"
        assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_the_first_line_says_what_is_about_to_happen(tiny_root, tmp_path):
    r = probe("data=mask", f"data.root={tmp_path / 'nowhere'}", "model.backbone=resnet10t",
              f"hydra.run.dir={tmp_path / 'r'}")
    first = r.stdout.splitlines()[0]
    assert "mask_cls task=train" in first and "nowhere" in first and "model=resnet10t" in first
    assert str(tmp_path / "r") in first
    assert re.search(r"config: task=train data=mask model=timm head=linear", r.stdout)
    assert "changed: data=mask" in r.stdout
    r = probe("data=mask", f"data.root={tmp_path / 'nowhere'}", "extras.print_config=false",
              f"hydra.run.dir={tmp_path / 'r2'}")
    assert "config: " not in r.stdout and "mask_cls task=train" in r.stdout


def test_timm_names_without_importing_timm_are_timms_own():
    import timm

    from mask_cls.models.names import suggestion, timm_names

    assert set(timm.list_models()) <= timm_names()
    assert suggestion("resnet10", timm_names()).startswith(" (did you mean: resnet10t, resnet101")
    assert "efficientnet_b0" in suggestion("efficientnet_b", timm_names())


def _leaf_keys(node: dict, prefix: str = ""):
    for k, v in node.items():
        key = f"{prefix}.{k}" if prefix else k
        yield key
        if isinstance(v, dict):
            yield from _leaf_keys(v, key)


def test_every_key_of_the_composed_config_is_known_to_the_typo_check():
    """No false alarm: each key of the config composed with every option passes."""
    from omegaconf import OmegaConf

    from mask_cls.typos import groups, problem
    from tests.conftest import compose_cfg

    for group, options in groups().items():
        for option in options:
            if group in ("hparams_search", "experiment", "debug") or (group == "data" and option == "table"):
                continue
            data = [] if group == "data" else ["data=mask", "data.root=/x"]
            cfg = OmegaConf.to_container(compose_cfg(f"{group}={option}", *data), resolve=False)
            for key in _leaf_keys(cfg):
                if key not in groups():  # a group's own key takes an option name
                    assert problem(f"{key}=1") is None, (group, option, key, problem(f"{key}=1"))


@pytest.mark.slow
def test_progress_lines_in_a_log_file(tiny_root, tmp_path):
    out = tmp_path / "run"
    r = run_cli("data=mask", f"data.root={tiny_root}", *FAST, "trainer.max_epochs=2", f"hydra.run.dir={out}")
    every = run_cli("data=mask", f"data.root={tiny_root}", *FAST, "trainer.max_epochs=1", "progress.every_s=0",
                    f"hydra.run.dir={tmp_path / 'every'}")  # a line at every step and validation batch
    assert len(re.findall(r"epoch 1/1 step \d/3", every.stdout)) == 3 and "epoch 1/1 validating: batch" in every.stdout
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.splitlines()
    steps = [i for i, ln in enumerate(lines) if re.search(r"epoch 1/2 step \d+/3: loss \d\.\d+, lr .*images/s, .* left", ln)]
    done = [i for i, ln in enumerate(lines) if re.search(r"epoch \d/2 done in [\d:]+: train loss .* val/f1 .*best", ln)]
    assert steps and len(done) == 2 and steps[0] < done[0], "\n".join(lines[-40:])
    assert any(re.search(r"predicting \d+ images: \d+/\d+ batches \(100%\)", ln) for ln in lines)
    assert not re.search(r"━+ \d+/\d+", r.stdout + r.stderr)  # no live bar drawn into a file
    rows = (out / "csv" / "metrics.csv").read_text().splitlines()
    assert sum(1 for row in rows[1:] if row.split(",")[0] in ("0", "1")) >= 2
    assert "running" not in json.loads((out / "metrics.json").read_text())
    assert (out / "run.log").read_text().count(" done in ") == 2  # the log file holds them too


@pytest.mark.slow
@pytest.mark.parametrize("logger", ["csv", "csv_wandb"])
def test_a_default_tiny_run_prints_no_warning_it_did_not_write(tiny_root, tmp_path, logger):
    r = run_cli("data=mask", f"data.root={tiny_root}", "model.backbone=mobilenetv3_small_050", "data.image_size=[64,48]",
                "data.batch_size=16", "trainer.max_epochs=1", "trainer.limit_train_batches=3", f"logger={logger}",
                f"hydra.run.dir={tmp_path / 'r'}", env={"PYTHONWARNINGS": "", "WANDB_MODE": "offline"})
    assert r.returncode == 0, r.stderr[-3000:]
    foreign = [ln for ln in (r.stdout + r.stderr).splitlines()
               if re.search("warn", ln, re.I) and "[mask_cls][WARNING]" not in ln]
    assert foreign == [], foreign  # wandb offline included: its anonymous-mode notice is gone
    assert "litlogger" not in r.stdout + r.stderr and "FLOPs" not in r.stdout + r.stderr


def _images(root):
    """The training images (the synthetic set's hidden junk files left out)."""
    return sorted(p for p in (root / "train" / "images").rglob("*.jpg") if not any(q.startswith(".") for q in p.parts))


@pytest.mark.slow
def test_table_paths_outside_the_root_are_one_finding_with_the_fix(tiny_root, tmp_path):
    images = _images(tiny_root)[:40]
    csv = tmp_path / "tables" / "t.csv"
    csv.parent.mkdir()
    csv.write_text("path,label,person\n" + "".join(f"{p},{i % 18},{i // 7}\n" for i, p in enumerate(images)))
    r = run_cli("task=check", "data=table", f"data.csv={csv}", f"hydra.run.dir={tmp_path / 'c'}")
    assert r.returncode == 1
    report = json.loads((tmp_path / "c" / "check.json").read_text())
    assert [p["message"] for p in report["problems"]] == [
        f"40 path(s) lie outside data.root={csv.parent} (first: '{images[0]}'); set data.root="
        f"{tiny_root / 'train' / 'images'}, a folder that holds them all"]
    r = run_cli("task=check", "data=table", f"data.csv={csv}", f"data.root={tiny_root / 'train' / 'images'}",
                f"hydra.run.dir={tmp_path / 'c2'}")
    assert r.returncode == 0, r.stdout[-2000:]


@pytest.mark.parametrize("case", ["one folder", "one mask state", "under 18"])
def test_warnings_about_what_a_user_would_not_notice(tiny_root, tmp_path, case):
    from mask_cls.data.datamodule import MaskDataModule

    images = _images(tiny_root)
    folder = tmp_path / "flat"
    folder.mkdir()
    rows = []
    for i, p in enumerate(images[:70]):
        shutil.copy(p, folder / f"{i}.jpg")
        mask = "wear" if case == "one mask state" else ["wear", "incorrect", "not_wear"][i % 3]
        person = "" if case == "one folder" else f",{i // 7}"
        rows.append(f"{i}.jpg,{mask},{'male' if i % 2 else 'female'},{12 if case == 'under 18' else 20 + i % 50}{person}")
    header = "path,mask,gender,age" + ("" if case == "one folder" else ",person")
    csv = folder / "t.csv"
    csv.write_text(header + "\n" + "\n".join(rows) + "\n")
    import logging

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("mask_cls").addHandler(handler)
    try:
        dm = MaskDataModule.from_flat(None, csv=str(csv), layout="table", n_folds=2, num_workers=0, image_size=(64, 48))
        try:
            dm.setup("fit")
        except Exception:  # noqa: BLE001 - one person cannot be split: the warning came first
            assert case == "one folder"
    finally:
        logging.getLogger("mask_cls").removeHandler(handler)
    said = " ".join(r.getMessage() for r in records)
    expected = {"one folder": "all 70 images sit in one folder, so they count as one person",
                "one mask state": "every image has mask state wear: only 6 of the 18 classes",
                "under 18": "10 person(s) younger than 18"}[case]
    assert expected in said, said


def _study(*overrides: str):
    from hydra import compose, initialize_config_dir

    from mask_cls.resolvers import register

    register()
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["hparams_search=optuna", *overrides], return_hydra_config=True)
    return str(cfg.hydra.sweeper.study_name), str(cfg.hydra.sweeper.storage)


def test_an_optuna_study_is_keyed_by_data_and_search_space(tmp_path):
    a, storage = _study("data=mask", "data.root=/data/a")
    assert a.startswith("mask_cls_train_") and a == _study("data=mask", "data.root=/data/a")[0]
    assert a != _study("data=mask", "data.root=/data/b")[0]  # other data: another study
    assert a != _study("data=mask", "data.root=/data/a", "+hydra.sweeper.params.seed='choice(1,2)'")[0]
    assert a != _study("task=cv", "data=mask", "data.root=/data/a")[0]
    assert storage.endswith("/outputs/train/multiruns/optuna.db")  # beside the dated sweep folders
    from mask_cls.resolvers import sweep_db

    # the storage follows the sweep folder: beside the dated default ones, inside one a user names
    assert sweep_db(str(tmp_path / "multiruns" / "2026-11-30_06-41-00")) == str(tmp_path / "multiruns")
    assert sweep_db(str(tmp_path / "mine")) == str(tmp_path / "mine")
    assert "${sweep_db:${hydra.sweep.dir}}" in (ROOT / "conf" / "hparams_search" / "optuna.yaml").read_text()


def test_the_mistakes_gallery_shows_one_image_per_person():
    import numpy as np

    from mask_cls.evaluation.figures import most_confident_mistakes

    probs = np.full((6, 18), 0.01)
    conf = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    for i, c in enumerate(conf):
        probs[i, 1] = c  # every row predicts class 1
    y = np.array([0, 0, 1, 0, 0, 0])  # row 2 is right
    persons = ["a", "a", "b", "b", "c", "a"]
    assert list(most_confident_mistakes(y, probs, persons)) == [0, 3, 4]  # a's best, b's only mistake, c
    assert list(most_confident_mistakes(y, probs)) == [0, 1, 3, 4, 5]


@pytest.mark.parametrize("shape", [(160, 120), (64, 48), (50, 200), (400, 100), (7, 3), (1, 1)])
def test_a_gallery_tile_keeps_the_aspect_centred_on_white(tmp_path, shape):
    """Each mistake in the mosaic: fitted inside the tile, aspect kept, centred; white around it."""
    import numpy as np
    from PIL import Image

    from mask_cls.evaluation.figures import TILE, _tile

    h, w = shape
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(tmp_path / "a.png")  # a black image
    tile = _tile(str(tmp_path / "a.png"))
    assert tile is not None and tile.shape == (*TILE, 3)
    rows, cols = np.flatnonzero((tile < 128).all(2).any(1)), np.flatnonzero((tile < 128).all(2).any(0))
    th, tw = rows.size, cols.size
    assert (rows.min() + rows.max()) / 2 == pytest.approx((TILE[0] - 1) / 2, abs=1)
    assert (cols.min() + cols.max()) / 2 == pytest.approx((TILE[1] - 1) / 2, abs=1)
    assert th == TILE[0] or tw == TILE[1]  # as large as the tile allows
    assert th / tw == pytest.approx(h / w, rel=0.05, abs=2 / min(th, tw))
    assert (tile[tile.min(2) >= 128] == 255).all()  # the rest is white
    (tmp_path / "b.png").write_bytes(b"not an image")
    assert _tile(str(tmp_path / "b.png")) is None


def test_progress_counts_the_images_a_training_step_receives():
    """images/s counts images, not steps: the batch a step gets is a ``Labeled`` (UDA: a mapping
    of labeled and unlabeled views, whose labeled images are counted)."""
    import torch

    from mask_cls.callbacks import _batch_size
    from mask_cls.models.preprocessor import Labeled

    x = torch.zeros(16, 3, 8, 8)
    assert _batch_size(Labeled(x, torch.zeros(16, dtype=torch.long))) == 16
    assert _batch_size({"labeled": Labeled(x[:7], torch.zeros(7, dtype=torch.long)), "unlabeled": (x, x)}) == 7
    assert _batch_size((x[:5], torch.zeros(5))) == 5


@pytest.mark.slow
def test_lightnings_seed_and_accelerator_lines_stay_in_the_log_file(tiny_root, tmp_path):
    """Lightning's INFO lines a user cannot act on (seed set, GPU/TPU available) are not on the
    screen, and stay in run.log."""
    out = tmp_path / "run"
    r = run_cli("data=mask", f"data.root={tiny_root}", *FAST, "task.predict=false", f"hydra.run.dir={out}")
    assert r.returncode == 0, r.stderr[-3000:]
    shown = r.stdout + r.stderr
    assert "Seed set to" not in shown and "GPU available" not in shown and "TPU available" not in shown
    logged = (out / "run.log").read_text()
    assert "Seed set to" in logged and "GPU available" in logged and "fold 0: val/f1=" in shown


@pytest.mark.slow
def test_the_validation_pass_after_a_fit_says_it_is_working(tiny_root, tmp_path):
    """After training, the report's prediction of the validation persons (TTA, the temperature's
    logits) prints progress lines in a log file, as training does: no silent minutes."""
    out = tmp_path / "run"
    r = run_cli("data=mask", f"data.root={tiny_root}", *FAST, "task.predict=false", "progress.mode=lines",
                "progress.every_s=0", f"hydra.run.dir={out}")
    assert r.returncode == 0, r.stderr[-3000:]
    lines = (out / "run.log").read_text().splitlines()
    fitted = next(i for i, line in enumerate(lines) if "fold 0: val/f1=" in line)
    after = [line for line in lines[fitted:] if "predicting" in line and "left" in line]
    assert after, lines[fitted:]
    assert re.search(r"predicting \d+ images: (\d+)/\1 batches \(100%\)", "\n".join(after))


@pytest.mark.slow
def test_the_post_fit_validation_pass_speaks_at_its_rhythm_on_a_slow_loader(trained, tiny_root, monkeypatch, caplog):
    """The pass that follows every fit (report, temperature) on a loader slowed to 40 ms an image:
    its first progress line comes at once and no two lines are further apart than the rhythm
    plus one batch, however long the pass takes (it once sat silent for 90 s)."""
    import logging
    import time

    import numpy as np

    from mask_cls import progress
    from mask_cls.data import datasets
    from mask_cls.data.layouts.competition.tables import read_eval
    from mask_cls.evaluation.temperature import validation_pass
    from mask_cls.inference.runs import best_checkpoint, load_model

    real = datasets.read_rgb

    def slow(path, target=None):
        time.sleep(0.04)
        return real(path, target=target)

    monkeypatch.setattr(datasets, "read_rgb", slow)
    module = load_model(best_checkpoint(trained))
    paths = list(read_eval(tiny_root).image) * 3
    progress.configure("lines", 0.5)
    try:
        with caplog.at_level(logging.INFO, logger="mask_cls"):
            start = time.time()
            validation_pass(module, paths, ["none", "hflip"], {"image_size": [64, 48], "batch_size": 4,
                                                               "num_workers": 0})
            end = time.time()
    finally:
        progress.configure()
    stamps = [r.created for r in caplog.records if r.getMessage().startswith(f"predicting {len(paths)} images")]
    assert end - start > 0.04 * len(paths)  # the loader was slow
    assert len(stamps) >= (end - start) / 0.5 - 1 and stamps[0] - start < 1.0
    assert float(np.diff([*stamps, end]).max()) < 0.5 + 4 * 0.04 + 0.5  # the rhythm, one batch, slack
