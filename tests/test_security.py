"""Every file the project reads is untrusted: attacks as an attacker (and an unlucky user) tries them."""

import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from mask_cls.checkpoint_io import load_checkpoint
from mask_cls.data.images import read_rgb, reduction
from mask_cls.data.layouts.competition.tables import read_eval, read_train
from mask_cls.errors import ConfigError, DataError
from mask_cls.module import MaskClassifier
from tests.conftest import FAST, ROOT, run_cli
from tests.conftest import module_config as _module_config


def _one_error_line(stderr: str) -> str:
    """The run's single ``error:`` line (log lines aside), with no traceback and no Hydra block."""
    errors = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in stderr and "Error in call to target" not in stderr, stderr[-3000:]
    return errors[0]


# -- 1. a checkpoint's config is data, never code ------------------------------------------------


def _evil_checkpoint(tmp_path: Path, victim: Path, key: str, node) -> Path:
    """A checkpoint that loads with weights_only=True and whose saved config names a callable."""
    config = _module_config()
    module = MaskClassifier(config)
    config = {**config, key: node}
    path = tmp_path / f"evil_{key}.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": {"config": config}}, path)
    torch.load(path, weights_only=True)  # passes the pickle check: the attack is in the config
    return path


def _attacks(victim: Path) -> dict:
    return {
        "head": {"_target_": "builtins.open", "file": str(victim), "mode": "w"},
        "loss": {"_target_": "mask_cls.losses.ce.CrossEntropy",
                 "weight": {"_target_": "shutil.copyfile", "src": "/etc/hostname", "dst": str(victim)}},
        "optim": {"_target_": "numpy.load", "file": str(victim), "allow_pickle": True},
        "sched": {"_target_": "os.system", "command": f"rm {victim}"},
    }


@pytest.mark.parametrize("key", ["head", "loss", "optim", "sched"])
def test_checkpoint_config_never_runs_code(tmp_path, key):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    path = _evil_checkpoint(tmp_path, victim, key, _attacks(victim)[key])
    with pytest.raises(ConfigError, match="refused, its saved config"):
        load_checkpoint(str(path))
    assert victim.read_text() == "precious"


@pytest.mark.slow
def test_predict_from_a_crafted_checkpoint_is_refused(tiny_root, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    path = _evil_checkpoint(tmp_path, victim, "head", _attacks(victim)["head"])
    r = run_cli("task=predict", f"run_dir={path}", "data=mask", f"data.root={tiny_root}",
                f"hydra.run.dir={tmp_path / 'run'}", "data.num_workers=0")
    assert r.returncode == 1 and "refused, its saved config" in r.stderr
    assert _one_error_line(r.stderr)
    assert victim.read_text() == "precious" and not (tmp_path / "run" / "submission.csv").exists()


def test_a_plain_config_with_a_known_target_still_loads(tmp_path):
    config = _module_config()
    module = MaskClassifier(config)
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": {"config": config}}, tmp_path / "ok.ckpt")
    loaded = load_checkpoint(str(tmp_path / "ok.ckpt"))
    x = torch.randn(2, 3, 32, 24)
    assert torch.allclose(loaded.net.probs(x), module.eval().net.probs(x))


# -- 2. paths never leave their root -------------------------------------------------------------


def test_person_folder_outside_the_root_is_refused(tiny_copy, tmp_path):
    outside = tmp_path / "outside_person"
    first = sorted(p for p in (tiny_copy / "train" / "images").iterdir() if p.is_dir() and p.name[0] != ".")[0]
    shutil.copytree(first, outside)
    csv = tiny_copy / "train" / "train.csv"
    lines = csv.read_text().splitlines()
    cells = lines[1].split(",")
    cells[-1] = "../../../outside_person"
    lines[1] = ",".join(cells)
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"train.csv:2: path '../../../outside_person' leaves"):
        read_train(tiny_copy)


def test_symlinked_person_folder_and_image_out_of_the_root(tiny_copy, tmp_path):
    folders = sorted(p for p in (tiny_copy / "train" / "images").iterdir() if p.is_dir() and p.name[0] != ".")
    outside = tmp_path / "elsewhere"
    shutil.move(str(folders[0]), outside)
    folders[0].symlink_to(outside, target_is_directory=True)
    with pytest.raises(DataError, match="leaves"):
        read_train(tiny_copy)
    folders[0].unlink()
    shutil.move(str(outside), folders[0])
    img = next(p for p in folders[1].iterdir() if p.stem == "normal")
    secret = tmp_path / "secret.jpg"
    shutil.move(str(img), secret)
    img.symlink_to(secret)
    with pytest.raises(DataError, match="leaves"):
        read_train(tiny_copy)


def test_eval_image_id_cannot_walk_out(tiny_copy):
    info = tiny_copy / "eval" / "info.csv"
    lines = info.read_text().splitlines()
    lines[1] = "../../../x.jpg," + lines[1].split(",")[1]
    info.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"info.csv:2: path '../../../x.jpg' leaves"):
        read_eval(tiny_copy)
    lines[1] = "/etc/passwd,0"
    info.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="must be relative"):
        read_eval(tiny_copy)


@pytest.mark.slow
def test_prepare_never_writes_outside_its_output(tiny_copy, tmp_path):
    target = tmp_path / "x.jpg"  # where ../../../x.jpg from eval/images points
    real = sorted((tiny_copy / "eval" / "images").iterdir())[0]
    shutil.copy(real, tmp_path / "x.jpg")
    target.write_bytes(target.read_bytes())
    before = target.read_bytes()
    info = tiny_copy / "eval" / "info.csv"
    lines = info.read_text().splitlines()
    lines[1] = "../../../x.jpg,0"
    info.write_text("\n".join(lines) + "\n")
    r = run_cli("task=prepare", "data=mask", f"data.root={tiny_copy}", f"task.out={tmp_path / 'crop'}",
                f"hydra.run.dir={tmp_path / 'run'}")
    assert r.returncode == 1 and "leaves" in r.stderr
    assert target.read_bytes() == before


def test_pseudo_csv_paths_stay_in_known_roots(tiny_root, tmp_path):
    from mask_cls.data.pseudo import read_pseudo

    secret = tmp_path / "private" / "me.jpg"
    secret.parent.mkdir()
    shutil.copy(next((tiny_root / "eval" / "images").iterdir()), secret)
    csv = tmp_path / "pl" / "pseudo.csv"
    csv.parent.mkdir()
    csv.write_text(f"image,label,confidence\n{secret},3,0.99\n")
    with pytest.raises(DataError, match="pseudo.csv:2: .* outside the data root"):
        read_pseudo(csv, [tiny_root])
    inside = next((tiny_root / "eval" / "images").iterdir())
    csv.write_text(f"image,label,confidence\n{inside},3,0.99\n")
    assert list(read_pseudo(csv, [tiny_root])["image"]) == [str(inside)]


# -- 3. decompression bombs ----------------------------------------------------------------------


def _person(root: Path) -> Path:
    return sorted(p for p in (root / "train" / "images").iterdir() if p.is_dir() and p.name[0] != ".")[0]


def _png_claiming(path: Path, w: int, h: int) -> Path:
    """A small PNG whose header claims w x h pixels (what a bomb looks like before decoding)."""
    ok, buf = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    data = bytearray(buf.tobytes())
    ihdr = data[16:29]
    ihdr[0:8] = struct.pack(">II", w, h)
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(ihdr)) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))
    return path


def test_bomb_is_refused_from_its_header(tmp_path, monkeypatch):
    bomb = _png_claiming(tmp_path / "bomb.png", 30000, 30000)
    with pytest.raises(DataError, match=r"bomb.png: 30000x30000 image \(900 MP\) is above the limit"):
        read_rgb(bomb)
    monkeypatch.setenv("MASK_CLS_MAX_IMAGE_PIXELS", str(10**9))  # data.max_image_pixels raises it
    with pytest.raises(DataError) as e:
        read_rgb(bomb)
    assert "above the limit" not in str(e.value)


@pytest.mark.slow
def test_bomb_in_the_data_check_and_train(tiny_copy, tmp_path):
    victim = next(p for p in _person(tiny_copy).iterdir() if p.stem == "mask1")
    victim.unlink()
    _png_claiming(victim.with_suffix(".png"), 30000, 30000)
    r = run_cli("task=check", "data=mask", f"data.root={tiny_copy}", f"hydra.run.dir={tmp_path / 'check'}")
    assert r.returncode == 1 and (tmp_path / "check" / "check.json").is_file()  # the report is written
    assert "above the limit" in (tmp_path / "check" / "check.json").read_text()
    r = run_cli("data=mask", f"data.root={tiny_copy}", "data.check_images=false", *FAST,
                f"hydra.run.dir={tmp_path / 'train'}")
    assert r.returncode == 1 and "mask1.png: 30000x30000 image" in r.stderr
    assert _one_error_line(r.stderr)


def test_large_jpegs_decode_at_a_reduced_scale(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (800, 600, 3), dtype=np.uint8)
    path = tmp_path / "big.jpg"
    cv2.imwrite(str(path), img)
    assert reduction((600, 800), (96, 72)) == 8 and reduction((600, 800), (256, 192)) == 2
    assert read_rgb(path, (256, 192)).shape == (400, 300, 3)  # 1/2 scale, still >= the target
    assert read_rgb(path).shape == (800, 600, 3)


@pytest.mark.slow
def test_truncated_jpeg_same_verdict_in_train_and_check(tiny_copy, tmp_path):
    victim = next(p for p in _person(tiny_copy).iterdir() if p.stem == "mask2")
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated"):
        read_rgb(victim)
    r = run_cli("data=mask", f"data.root={tiny_copy}", *FAST, f"hydra.run.dir={tmp_path / 'train'}")
    assert r.returncode == 1 and "truncated" in r.stderr
    r = run_cli("task=check", "data=mask", f"data.root={tiny_copy}", f"hydra.run.dir={tmp_path / 'check'}")
    assert r.returncode == 1 and "truncated" in (tmp_path / "check" / "check.json").read_text()


# -- 4. one run per directory ----------------------------------------------------------------------


def _evaluate_args(tiny_root, tmp_path, run_dir):
    info = (tiny_root / "eval" / "info.csv").read_text()
    sub = tmp_path / "sub.csv"
    if not sub.exists():
        sub.write_text(info)
    return [sys.executable, str(ROOT / "run.py"), "task=evaluate", f"submission={sub}",
            f"answers={tiny_root / 'eval_answers.csv'}", f"hydra.run.dir={run_dir}"]


@pytest.mark.slow
def test_two_runs_started_together_into_one_directory(tiny_root, tmp_path):
    run_dir = tmp_path / "shared"
    env = {**os.environ, "WANDB_MODE": "disabled"}
    procs = [subprocess.Popen(_evaluate_args(tiny_root, tmp_path, run_dir), env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    assert sorted(rc for rc, _ in results) == [0, 1], results
    assert any("another run claimed" in err or "already holds" in err for _, err in results)


@pytest.mark.slow
def test_a_refused_run_leaves_the_earlier_config_alone(tiny_root, tmp_path):
    run_dir = tmp_path / "run"
    env = {**os.environ, "WANDB_MODE": "disabled"}
    first = subprocess.run(_evaluate_args(tiny_root, tmp_path, run_dir), env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    saved = {n: (run_dir / ".hydra" / n).read_text() for n in ("config.yaml", "hydra.yaml", "overrides.yaml")}
    assert yaml.safe_load(saved["config.yaml"])["task"]["name"] == "evaluate"
    second = subprocess.run([*_evaluate_args(tiny_root, tmp_path, run_dir), "seed=7"], env=env,
                            capture_output=True, text=True)
    assert second.returncode == 1 and "already holds" in second.stderr
    assert {n: (run_dir / ".hydra" / n).read_text() for n in saved} == saved
    assert oct((run_dir / "scores.json").stat().st_mode & 0o777) == oct(0o666 & ~_umask())  # not 0600


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


# -- 5. signals --------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_run_with_a_non_zero_exit_and_a_loadable_checkpoint(tiny_root, tmp_path, sig):
    out = tmp_path / "run"
    args = [sys.executable, str(ROOT / "run.py"), "data=mask", f"data.root={tiny_root}", *FAST, "task.predict=false",
            "trainer.max_epochs=50", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
            f"hydra.run.dir={out}"]
    # SIGINT as at a terminal (a background shell starts its children with SIGINT ignored)
    proc = subprocess.Popen(args, env={**os.environ, "WANDB_MODE": "disabled"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    last = out / "checkpoints" / "last.ckpt"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not last.is_file():
        time.sleep(0.2)
    assert proc.poll() is None, "training ended before the signal"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0, err[-2000:]
    if sig == signal.SIGTERM:
        assert "error: stopped by SIGTERM" in err and proc.returncode == 143
        assert "stopped by SIGTERM" in (out / "failed.txt").read_text()
    assert torch.load(last, weights_only=True)["epoch"] >= 0
    load_checkpoint(str(last))


# -- 7. small holes, one line each ---------------------------------------------------------------------


@pytest.mark.slow
def test_zero_epochs_is_refused(tiny_root, tmp_path):
    r = run_cli("data=mask", f"data.root={tiny_root}", *FAST, "trainer.max_epochs=0", f"hydra.run.dir={tmp_path / 'r'}")
    assert r.returncode == 1 and "trainer.max_epochs=0" in r.stderr
    assert not (tmp_path / "r" / "submission.csv").exists()


@pytest.mark.parametrize("content", [b"", b"this is not a checkpoint\n"])
def test_empty_or_text_checkpoint_is_one_line(tmp_path, content):
    path = tmp_path / "bad.ckpt"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match="bad.ckpt: not a readable checkpoint"):
        load_checkpoint(str(path))


@pytest.mark.slow
def test_nan_learning_rate_is_one_line(tiny_root, tmp_path):
    r = run_cli("data=mask", f"data.root={tiny_root}", *FAST, "optim.lr=nan", f"hydra.run.dir={tmp_path / 'r'}")
    assert r.returncode == 1 and "optim.lr=nan" in _one_error_line(r.stderr)


@pytest.mark.slow
def test_answers_with_only_a_header_and_extra_rows(tiny_root, tmp_path):
    info = (tiny_root / "eval" / "info.csv").read_text()
    sub = tmp_path / "sub.csv"
    sub.write_text(info)
    header_only = tmp_path / "answers.csv"
    header_only.write_text("ImageID,ans\n")
    r = run_cli("task=evaluate", f"submission={sub}", f"answers={header_only}", f"hydra.run.dir={tmp_path / 'a'}")
    assert r.returncode == 1 and "answers.csv: no rows" in _one_error_line(r.stderr)
    sub.write_text(info + "extra_image.jpg,3\n")
    r = run_cli("task=evaluate", f"submission={sub}", f"answers={tiny_root / 'eval_answers.csv'}",
                f"hydra.run.dir={tmp_path / 'b'}")
    assert r.returncode == 1 and "extra_image.jpg" in r.stderr


def test_csv_line_numbers_count_blank_lines(tiny_copy):
    csv = tiny_copy / "train" / "train.csv"
    lines = csv.read_text().splitlines()
    lines.insert(1, "")
    lines[3] = lines[3].replace("female", "robot").replace(",male,", ",robot,")
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"train.csv:4: unknown gender 'robot'"):
        read_train(tiny_copy)


def test_cache_never_writes_into_the_data_root(tiny_root, tmp_path, monkeypatch):
    from mask_cls.data.datamodule import MaskDataModule

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    dm = MaskDataModule.from_flat(str(tiny_root), cache=True, cache_dir=None, num_workers=0)
    assert str(dm.cache.dir).startswith(str(tmp_path / "xdg"))


@pytest.mark.slow
def test_errors_while_building_objects_are_one_line(tiny_root, tmp_path):
    r = run_cli("data=mask", f"data.root={tiny_root}", *FAST, "data.batch_size=0", f"hydra.run.dir={tmp_path / 'r'}")
    assert r.returncode == 1 and _one_error_line(r.stderr).startswith("error: data.batch_size=0")
