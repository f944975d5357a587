"""A shared run directory or checkpoint is data: the attacks of a security review, each as the
command a victim types on a crafted run, checkpoint or file, and what must not happen (nothing
runs, nothing outside the run is deleted, copied or written: checksums of a victim folder)."""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import sys
from pathlib import Path

import cv2
import pytest
import torch
import yaml

from tests.conftest import FAST, ROOT, run_cli

SECRET = "s3cr3t-value-never-written"


class _Payload:
    """A pickle that runs a shell command when loaded with weights_only=False."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def shared_copy(trained: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "shared" / "run"
    shutil.copytree(trained, dst)
    return dst


def digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (links not followed) and its SHA-256."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


def victim(tmp_path: Path) -> Path:
    """A folder outside every run: a stand-in for ~/.ssh or a colleague's results."""
    folder = tmp_path / "victim"
    (folder / "important").mkdir(parents=True)
    (folder / "important" / "results.csv").write_text("a,b\n1,2\n")
    (folder / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY----- not really\n")
    return folder


def files_with(folder: Path, needle: bytes) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


def edit_yaml(path: Path, change) -> None:
    content = yaml.safe_load(path.read_text())
    change(content)
    path.write_text(yaml.safe_dump(content))


def one_error(stderr: str) -> str:
    errors = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr[-3000:]
    return errors[0]


# -- 1. a saved config never reaches a resolver or instantiate ------------------------------------


@pytest.mark.slow
def test_1_resume_never_runs_code_from_a_saved_config(trained, tmp_path):
    run = shared_copy(trained, tmp_path)
    marker, script = tmp_path / "pwned", tmp_path / "evil.sh"
    payload = tmp_path / "payload.pkl"
    payload.write_bytes(pickle.dumps(_Payload(f"touch {marker}")))
    load = f"${{oc.decode:'{{_target_: torch.load, f: \"{payload}\", weights_only: false}}'}}"
    savetxt = f"${{oc.decode:'{{_target_: numpy.savetxt, fname: \"{script}\", X: [[1]]}}'}}"

    def craft(c):
        c["callbacks"]["evil"] = load
        c["logger"] = {**(c.get("logger") or {}), "evil": load}
        c["augment"]["train"] = [savetxt]
        c["data"]["augment"]["train"] = [savetxt]

    edit_yaml(run / ".hydra" / "config.yaml", craft)
    out = tmp_path / "resumed"
    r = run_cli(f"resume={run}", "trainer.max_epochs=2", f"hydra.run.dir={out}", cwd=tmp_path)
    assert not marker.exists() and not script.exists(), "code from the saved config ran"
    assert r.returncode == 0, r.stderr[-3000:]  # the recipe is conf/ + overrides.yaml: the crafted values play no part
    saved = (out / ".hydra" / "config.yaml").read_text()
    assert "evil" not in saved and "oc.decode" not in saved


#: lines of a crafted ``.hydra/overrides.yaml``: each is refused in one line naming the file
REFUSED = [
    "callbacks.model_checkpoint.filename=${oc.env:HOME}",
    "callbacks.model_checkpoint.filename='${oc.decode:\"{_target_: os.system, command: id}\"}'",
    "+callbacks.evil._target_=os.system",
    "++callbacks.evil={_target_:os.system,command:id}",
    "callbacks.model_checkpoint._target_=os.system",
    "augment.train=[{_target_:numpy.savetxt,fname:x,X:[[1]]}]",
    "model=../../../../tmp/evil",
    "optim.lr=choice(0.1,0.2)",
    "~callbacks.model_checkpoint",
    "model@model=timm",
    "seed={a:1}",
    "callbacks.model_checkpoint._args_=[1]",
    # round 4: keys outside the recipe (places, loggers, online switches) are refused, not ignored
    "callbacks.last_checkpoint.dirpath=/tmp/elsewhere",
    "callbacks.model_checkpoint.dirpath=/tmp/elsewhere",
    "callbacks.model_checkpoint.filename=../../../victim/pwn_best",
    "callbacks.last_checkpoint.filename=/tmp/elsewhere/last",
    "logger.csv.save_dir=/tmp/elsewhere",
    "logger.csv.name=/tmp/elsewhere/csvlog",
    "logger.csv.version=../..",
    "logger.tensorboard.name=../../tb",
    "logger.mlflow.store_dir=/tmp/elsewhere",
    "logger.mlflow.tracking_uri=sqlite:////tmp/elsewhere/evil.db",
    "logger.mlflow.tracking_uri=http://127.0.0.1:9/",
    "logger.wandb.offline=false",
    "logger.wandb.project=someone_elses",
    "trainer.default_root_dir=/tmp/elsewhere",
    "trainer.profiler=simple",
    "data.cache_dir=/tmp/elsewhere",
    "data.pseudo_csv=/tmp/elsewhere/pseudo.csv",
    "data.soft_targets=/tmp/elsewhere/teacher_probs.csv",
    "data.relabel=/tmp/elsewhere/fixes.csv",
    "data.relabel=fixes.csv",
    "model.weights=/tmp/elsewhere/w.pth",
    "model.pretrained=true",
    "unlabeled=/tmp/elsewhere",
    "unlabeled=somefolder",
    "ssl.unlabeled=/tmp/elsewhere",
    "model.backbone=../../x",
    "callbacks.model_checkpoint.monitor=val/loss",
]
#: lines of this command's own keys (where, which task, which machine, how it shows and logs):
#: never taken from a saved run, skipped without a word
IGNORED = [
    "hydra.run.dir=/tmp/elsewhere",
    "paths.output_dir=/tmp/elsewhere",
    "hparams_search=optuna",
    "task=pseudo",
    "logger=mlflow",
    "trainer=ddp_sim",
    "trainer.devices=2",
    "progress.mode=lines",
    "data.num_workers=2",
    "debug=profiler",
]


def _recomposed(run: Path, typed: list[str]):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from mask_cls.resolvers import register
    from mask_cls.run_config import with_run_config

    register()
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=typed)
        merged = with_run_config(cfg, typed=typed)
    return OmegaConf.to_container(merged, resolve=False)


@pytest.mark.slow
@pytest.mark.parametrize("line", REFUSED)
def test_1_a_crafted_override_is_refused_in_one_line(trained, tmp_path, line):
    from mask_cls.errors import ConfigError

    run = shared_copy(trained, tmp_path)
    overrides = run / ".hydra" / "overrides.yaml"
    overrides.write_text(yaml.safe_dump([*yaml.safe_load(overrides.read_text()), line]))
    with pytest.raises(ConfigError, match=r"overrides.yaml: .*refused") as e:
        _recomposed(run, [f"resume={run}"])
    assert "\n" not in str(e.value)


@pytest.mark.slow
@pytest.mark.parametrize("line", IGNORED)
def test_1_output_locations_in_a_saved_run_are_ignored(trained, tmp_path, line):
    clean = _recomposed(trained, [f"resume={trained}"])
    run = shared_copy(trained, tmp_path)
    overrides = run / ".hydra" / "overrides.yaml"
    overrides.write_text(yaml.safe_dump([*yaml.safe_load(overrides.read_text()), line]))
    crafted = _recomposed(run, [f"resume={run}"])
    assert {**crafted, "resume": None} == {**clean, "resume": None}
    assert "/tmp/elsewhere" not in str(crafted)


@pytest.mark.slow
def test_1_the_recipe_keeps_what_the_run_chose(trained):
    cfg = _recomposed(trained, [f"resume={trained}", "trainer.max_epochs=5"])
    assert cfg["model"]["backbone"] == "mobilenetv3_small_050" and cfg["data"]["image_size"] == [64, 48]
    assert cfg["trainer"]["max_epochs"] == 5  # what is typed wins
    assert cfg["callbacks"]["model_checkpoint"]["dirpath"] == "${paths.output_dir}/checkpoints"
    listed = _recomposed(trained, ["task=predict", f"run_dir=[{trained},{trained}]"])  # a list: the first run's
    assert listed["data"]["root"] == cfg["data"]["root"] and listed["data"]["image_size"] == [64, 48]


# -- 2, 3, 5. paths come from the new run, never from the checkpoint or the saved config -----------


def _tamper_states(ckpt_file: Path, out: Path, **fields) -> None:
    ckpt = torch.load(ckpt_file, weights_only=True)
    for state in ckpt["callbacks"].values():
        if "best_model_path" in state:
            state.update(fields)
    torch.save(ckpt, out)


@pytest.mark.slow
def test_2_a_checkpoint_cannot_delete_outside_the_run(tiny_root, trained, tmp_path):
    target = victim(tmp_path)
    before = digest(target)
    new_run = tmp_path / "outputs" / "next"  # a run directory an attacker can predict
    evil = f"{new_run}/checkpoints/../../../victim/important"
    crafted = tmp_path / "downloaded.ckpt"
    _tamper_states(trained / "checkpoints" / "last.ckpt", crafted, dirpath=str(new_run / "checkpoints"),
                   best_model_path=evil, kth_best_model_path=evil, last_model_path=evil,
                   best_k_models={evil: torch.tensor(-1.0)}, kth_value=torch.tensor(-1.0),
                   best_model_score=torch.tensor(-1.0))
    r = run_cli("data=mask", f"data.root={tiny_root}", *FAST, "trainer.max_epochs=2", f"ckpt_path={crafted}",
                f"hydra.run.dir={new_run}")
    assert digest(target) == before, "files outside the run were removed"
    assert r.returncode == 0, r.stderr[-3000:]
    assert "outside this run's" in r.stdout + r.stderr  # one warning says what was dropped
    assert (new_run / "checkpoints" / "last.ckpt").is_file()


@pytest.fixture(scope="module")
def attacked_resume(trained, tmp_path_factory):
    """``resume=`` a shared run whose checkpoint names a private file as its best (3) and whose
    saved config sends checkpoints and logs elsewhere (5); the victim folder's checksums before."""
    tmp = tmp_path_factory.mktemp("attacked")
    run = shared_copy(trained, tmp)
    target = victim(tmp)
    before = digest(target)
    _tamper_states(run / "checkpoints" / "last.ckpt", run / "checkpoints" / "last.ckpt", dirpath=str(target),
                   best_model_path=str(target / "id_rsa"), best_model_score=torch.tensor(1.0))
    elsewhere = tmp / "elsewhere"

    def craft(c):
        c["callbacks"]["last_checkpoint"]["dirpath"] = str(elsewhere / "ckpt")
        c["callbacks"]["model_checkpoint"]["dirpath"] = str(elsewhere / "best")
        c["logger"]["csv"]["save_dir"] = str(elsewhere / "logs")

    edit_yaml(run / ".hydra" / "config.yaml", craft)
    out = tmp / "resumed"
    r = run_cli(f"resume={run}", "trainer.max_epochs=2", f"hydra.run.dir={out}", cwd=tmp)
    return r, out, target, before, elsewhere


@pytest.mark.slow
def test_3_a_checkpoint_cannot_copy_a_private_file_into_the_run(attacked_resume):
    r, out, target, before, _ = attacked_resume
    assert r.returncode == 0, r.stderr[-3000:]
    assert files_with(out, b"OPENSSH PRIVATE KEY") == []
    assert digest(target) == before


@pytest.mark.slow
def test_5_the_saved_config_cannot_redirect_writes(attacked_resume):
    r, out, _, _, elsewhere = attacked_resume
    assert r.returncode == 0, r.stderr[-3000:]
    assert not elsewhere.exists(), sorted(elsewhere.rglob("*"))
    assert (out / "checkpoints" / "last.ckpt").is_file() and (out / "csv" / "metrics.csv").is_file()


@pytest.mark.slow
def test_a_resume_keeps_the_best_checkpoint_of_the_run_it_continues(trained, tmp_path):
    """What the confinement must not break: the resumed run's best file is copied into the new run."""
    from mask_cls.checkpoint_io import confine_callback_state

    ckpt = torch.load(trained / "checkpoints" / "last.ckpt", weights_only=True)
    new = tmp_path / "new" / "checkpoints"
    confine_callback_state(ckpt, new, trained / "checkpoints")
    best = next(s for k, s in ckpt["callbacks"].items() if k.startswith("BestCheckpoint"))
    copy = Path(best["best_model_path"])
    assert copy.parent == new.resolve() and copy.is_file()
    assert list(best["best_k_models"]) == [str(copy)] and float(best["best_model_score"]) >= 0
    last = next(s for k, s in ckpt["callbacks"].items() if k.startswith("ModelCheckpoint"))
    assert last["best_model_path"] == "" and last["last_model_path"] == ""  # the old run's files are not ours


# -- 4. no resolver runs from a file ---------------------------------------------------------------


@pytest.mark.slow
def test_4_predict_never_resolves_a_saved_config(trained, tmp_path):
    run = shared_copy(trained, tmp_path)
    storage = tmp_path / "anywhere" / "deep" / "optuna.db"

    def craft(c):
        c["note"] = "${oc.env:MASK_CLS_TEST_SECRET}"
        c["seed"] = f"${{study_seed:1,'sqlite:///{storage}',evil}}"

    edit_yaml(run / ".hydra" / "config.yaml", craft)
    out = tmp_path / "pred"
    r = run_cli("task=predict", f"run_dir={run}", f"hydra.run.dir={out}", cwd=tmp_path,
                env={"MASK_CLS_TEST_SECRET": SECRET})
    assert r.returncode == 0, r.stderr[-3000:]
    assert files_with(out, SECRET.encode()) == [] and not (tmp_path / "anywhere").exists()


@pytest.mark.slow
def test_4_typed_secrets_are_masked_in_every_file_the_run_writes(tiny_root, tmp_path):
    sub = tmp_path / "sub.csv"
    sub.write_text((tiny_root / "eval" / "info.csv").read_text())
    out = tmp_path / "run"
    r = run_cli("task=evaluate", f"submission={sub}", f"answers={tiny_root / 'eval_answers.csv'}",
                f"+wandb_api_key={SECRET}", f"hydra.run.dir={out}")
    assert r.returncode == 0, r.stderr[-3000:]
    assert (out / ".hydra" / "overrides.yaml").is_file()
    assert files_with(out, SECRET.encode()) == []


# -- 6. any bytes in a file name -------------------------------------------------------------------


def _image_named(folder: Path, name: bytes, like: Path) -> None:
    with open(os.path.join(os.fsencode(folder), name), "wb") as f:
        f.write(like.read_bytes())


@pytest.mark.slow
def test_6_a_file_name_that_is_not_utf8_never_crashes_predict(trained, tiny_root, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    eval_images = sorted((tiny_root / "eval" / "images").iterdir())
    shutil.copy(eval_images[0], folder / "good.jpg")
    _image_named(folder, b"bad\xff\xfe.jpg", eval_images[1])
    out = tmp_path / "pred"
    r = run_cli("task=predict", f"run_dir={trained}", f"images={folder}", "data.on_bad_image=skip",
                f"hydra.run.dir={out}")
    assert r.returncode == 0, (r.returncode, r.stderr[-3000:])
    table = (out / "predictions.csv").read_text().splitlines()
    assert len(table) == 2 and "good.jpg" in table[1]
    assert "not UTF-8" in r.stdout + r.stderr


@pytest.mark.slow
def test_6_the_one_reader_decodes_any_name(tiny_root, tmp_path):
    """read_rgb and the unlabeled folder, in a child process (a crash must not take pytest down)."""
    folder = tmp_path / "unlabeled"
    folder.mkdir()
    like = sorted((tiny_root / "eval" / "images").iterdir())[0]
    _image_named(folder, b"x\xff.jpg", like)
    shutil.copy(like, folder / "y.jpg")
    code = ("import os, sys; from mask_cls.data.images import read_rgb; from mask_cls.data.unlabeled import folder_images\n"
            f"p = os.path.join({str(folder)!r}, os.fsdecode(b'x\\xff.jpg'))\n"
            "print(read_rgb(p).shape); print(len(folder_images(sys.argv[1])))")
    import subprocess

    r = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    assert r.stdout.splitlines() == [str(cv2.imread(str(like)).shape), "1"]  # decoded; the folder lists y.jpg only


# -- 7. bounded values -----------------------------------------------------------------------------


@pytest.mark.slow
def test_7_a_huge_image_size_in_a_checkpoint_is_one_line(trained, tmp_path):
    run = shared_copy(trained, tmp_path)
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    ckpt["hyper_parameters"]["config"]["image_size"] = [100000, 100000]
    crafted = run / "checkpoints" / "huge.ckpt"
    torch.save(ckpt, crafted)
    r = run_cli("task=predict", f"run_dir={crafted}", f"hydra.run.dir={tmp_path / 'pred'}")
    assert r.returncode == 1 and "image_size" in one_error(r.stderr) and "4096" in r.stderr


@pytest.mark.slow
@pytest.mark.parametrize("line", ["data.image_size=[100000,100000]", "data.batch_size=10000000",
                                  "model.dropout_samples=100000"])
def test_7_huge_values_in_a_saved_recipe_are_one_line(trained, tmp_path, line):
    run = shared_copy(trained, tmp_path)
    overrides = run / ".hydra" / "overrides.yaml"
    overrides.write_text(yaml.safe_dump([*yaml.safe_load(overrides.read_text()), line]))
    r = run_cli(f"resume={run}", f"hydra.run.dir={tmp_path / 'r'}")
    assert r.returncode == 1 and line.split("=")[0] in one_error(r.stderr)


# -- 8. pseudo-label rows are files, not names -----------------------------------------------------


def _datamodule(root: Path, pseudo_csv: Path):
    from mask_cls.data.datamodule import MaskDataModule

    dm = MaskDataModule.from_flat(str(root), image_size=(64, 48), n_folds=3, num_workers=0, pseudo_csv=str(pseudo_csv))
    dm.setup("fit")
    return dm


def test_8_hard_links_and_copies_of_validation_images_are_a_leak(tiny_copy, tmp_path):
    from mask_cls.data.datamodule import MaskDataModule
    from mask_cls.errors import DataError

    dm = MaskDataModule.from_flat(str(tiny_copy), image_size=(64, 48), n_folds=3, num_workers=0)
    dm.setup("fit")
    val_image = Path(dm.val_table["image"].iloc[0])
    for kind in ("link", "copy"):
        folder = tiny_copy / f"unl_{kind}"
        folder.mkdir()
        alias = folder / "x.jpg"
        os.link(val_image, alias) if kind == "link" else shutil.copy(val_image, alias)
        csv = folder / "pseudo.csv"
        csv.write_text(f"image,label,confidence\n{alias},0,0.99\n")
        with pytest.raises(DataError, match="validation images of this fold"):
            _datamodule(tiny_copy, csv)


@pytest.mark.slow
def test_8_a_linked_validation_image_is_refused_by_the_training_command(tiny_copy, tmp_path):
    from mask_cls.data.datamodule import MaskDataModule

    dm = MaskDataModule.from_flat(str(tiny_copy), image_size=(64, 48), n_folds=3, num_workers=0)
    dm.setup("fit")
    folder = tiny_copy / "unl"
    folder.mkdir()
    os.link(dm.val_table["image"].iloc[0], folder / "x.jpg")
    csv = folder / "pseudo.csv"
    csv.write_text(f"image,label,confidence\n{folder / 'x.jpg'},0,0.99\n")
    r = run_cli("data=mask", f"data.root={tiny_copy}", *FAST, f"data.pseudo_csv={csv}", f"hydra.run.dir={tmp_path / 'r'}")
    assert r.returncode == 1 and "validation images of this fold" in one_error(r.stderr)
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_8_labeled_aliases_and_repeated_rows_do_not_join_training(tiny_copy):
    from mask_cls.data.datamodule import MaskDataModule

    dm = MaskDataModule.from_flat(str(tiny_copy), image_size=(64, 48), n_folds=3, num_workers=0)
    dm.setup("fit")
    n_train = len(dm.train_table)
    folder = tiny_copy / "unl"
    folder.mkdir()
    os.link(dm.train_table["image"].iloc[0], folder / "labeled.jpg")  # true label wins
    unlabeled = sorted((tiny_copy / "eval" / "images").iterdir())[0]
    rows = [f"{folder / 'labeled.jpg'},17,0.99"] + [f"{unlabeled},5,0.95"] * 5000
    csv = folder / "pseudo.csv"
    csv.write_text("image,label,confidence\n" + "\n".join(rows) + "\n")
    dm = _datamodule(tiny_copy, csv)
    pseudo = dm.train_table[dm.train_table["pseudo"]]
    assert len(dm.train_table) == n_train + 1 and list(pseudo["label"]) == [5]
    assert dm.pseudo_summary == {"rows": 5001, "duplicates": 4999, "labeled": 1, "joined": 1}


# -- 9. one verdict for every task -----------------------------------------------------------------


@pytest.mark.slow
def test_9_an_eval_image_linked_outside_is_refused_by_check_as_by_predict(tiny_copy, tmp_path):
    from mask_cls.data.layouts.competition.tables import read_eval
    from mask_cls.errors import DataError

    image = sorted((tiny_copy / "eval" / "images").iterdir())[0]
    outside = tmp_path / "outside.jpg"
    shutil.move(image, outside)
    image.symlink_to(outside)
    with pytest.raises(DataError, match="leaves"):
        read_eval(tiny_copy)
    r = run_cli("task=check", "data=mask", f"data.root={tiny_copy}", f"hydra.run.dir={tmp_path / 'check'}")
    assert r.returncode == 1
    assert "leaves" in (tmp_path / "check" / "check.json").read_text()


# -- degraded cases: one line, never a traceback ---------------------------------------------------


@pytest.mark.parametrize("age", ["²", "1" * 400, "200", "45.5", "-3", "nan", "inf"])
def test_relabel_ages_follow_the_train_csv_rule(tmp_path, age):
    from mask_cls.data.layouts.competition.tables import person_row_problems
    from mask_cls.data.relabel import read_fixes
    from mask_cls.errors import DataError

    fixes = tmp_path / "fixes.csv"
    fixes.write_text(f"key,field,value\n000020,age,{age}\n")
    with pytest.raises(DataError, match=r"fixes.csv:2: cannot set age="):
        read_fixes(str(fixes))
    assert person_row_problems("female", age)  # train.csv refuses the same ages
    fixes.write_text("key,field,value\n000020,age,59\n")
    assert list(read_fixes(str(fixes))["value"]) == ["59"]


@pytest.mark.parametrize("content", [b"\x01", (2**62).to_bytes(8, "little"),
                                     b"\x40\x00\x00\x00\x00\x00\x00\x00" + b'{"x":{"dtype":"F32","shape":[100000,100000],'
                                     b'"data_offsets":[0,40000000000]}}' + b" " * 5])
def test_a_broken_safetensors_file_is_one_line(tmp_path, content):
    from mask_cls.errors import ConfigError
    from mask_cls.models.weights import read_state

    path = tmp_path / "w.safetensors"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=r"model.weights=.*w.safetensors: not a readable weights file") as e:
        read_state(path)
    assert "\n" not in str(e.value)


def _evaluate(tiny_root, tmp_path, run_dir) -> list[str]:
    sub = tmp_path / "sub.csv"
    sub.write_text((tiny_root / "eval" / "info.csv").read_text())
    return ["task=evaluate", f"submission={sub}", f"answers={tiny_root / 'eval_answers.csv'}", f"hydra.run.dir={run_dir}"]


@pytest.mark.slow
def test_an_output_path_that_is_a_file_is_one_line(tiny_root, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("keep me\n")
    for run_dir, reason in ((afile, "is a file, not a folder"), (afile / "sub", "a part of it is a file")):
        r = run_cli(*_evaluate(tiny_root, tmp_path, run_dir))
        assert r.returncode == 1 and reason in one_error(r.stderr)
    assert afile.read_text() == "keep me\n"


@pytest.mark.slow
def test_a_read_only_output_folder_is_one_line(tiny_root, tmp_path):
    import subprocess

    mount = tmp_path / "ro"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("a read-only file system needs mount (root with CAP_SYS_ADMIN); as root, chmod cannot refuse")
    try:
        r = run_cli(*_evaluate(tiny_root, tmp_path, mount / "run"))
        assert r.returncode == 1 and "cannot be written (Read-only file system)" in one_error(r.stderr)
    finally:
        subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.slow
def test_check_on_a_huge_broken_table_prints_a_capped_report(tmp_path):
    import json

    from mask_cls.data.report import LIMIT

    rows = 3 * LIMIT
    csv = tmp_path / "t.csv"
    csv.write_text("path,label,person\n" + "".join(f"img/{i}.jpg,{'x' if i % 10 == 0 else 3},{i // 7}\n"
                                                   for i in range(rows)))
    r = run_cli("task=check", "data=table", f"data.csv={csv}", f"hydra.run.dir={tmp_path / 'c'}")
    assert r.returncode == 1
    report = json.loads((tmp_path / "c" / "check.json").read_text())
    assert report["errors"] == rows + rows // 10 and len(report["problems"]) == LIMIT
    assert report["problems_left_out"] == rows + rows // 10 - LIMIT
    kinds = {k["kind"]: k["count"] for k in report["kinds"]}
    assert kinds == {"image '...' not found": rows, "label '...' is not a class in N..N": rows // 10}
    assert len((r.stdout + r.stderr).splitlines()) < 100  # not one line per row
    assert f"{rows} x error: image '...' not found" in r.stdout


@pytest.mark.slow
def test_a_killed_writer_leaves_no_temp_file_after_the_next_write(tmp_path):
    import signal
    import subprocess

    code = ("import os, signal, sys\nfrom mask_cls.io import atomic_write\n"
            "def write(tmp):\n    tmp.write_text('half')\n    os.kill(os.getpid(), signal.SIGKILL)\n"
            "atomic_write(sys.argv[1], write)")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "result.json")], cwd=ROOT)
    assert r.returncode == -signal.SIGKILL
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")], "the kill should leave a temp file"
    r = subprocess.run([sys.executable, "-c", "import sys; from mask_cls.io import write_json; "
                        "write_json({'a': 1}, sys.argv[1])", str(tmp_path / "other.json")], cwd=ROOT)
    assert r.returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.json"]
