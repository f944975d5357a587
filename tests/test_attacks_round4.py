"""Security, round 4: a saved run may change the recipe only, the run directory is ours alone,
every reader has a budget, and text out is inert. Each attack is the victim's command (or the
function it reaches) on a crafted input, with what must not happen checked: a victim folder's
checksums, a fake server on 127.0.0.1 that must receive nothing, and one error line."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mask_cls.errors import ConfigError, DataError
from tests.conftest import compose_cfg, module_config, run_cli
from tests.test_attacks import digest, one_error, victim

# -- 1. the victim's command on a shared run whose overrides name a server or a victim's folder ----


def _planted(trained: Path, tmp_path: Path, *lines: str) -> Path:
    run = tmp_path / "shared" / "run"
    shutil.copytree(trained, run)
    overrides = run / ".hydra" / "overrides.yaml"
    overrides.write_text(yaml.safe_dump([*yaml.safe_load(overrides.read_text()), *lines]))
    return run


@pytest.mark.slow
def test_a_shared_run_cannot_send_the_victims_data_to_a_server(trained, tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    port = server.getsockname()[1]
    try:
        run = _planted(trained, tmp_path, "logger=mlflow", f"logger.mlflow.tracking_uri=http://127.0.0.1:{port}")
        out = tmp_path / "resumed"
        r = run_cli(f"resume={run}", "trainer.max_epochs=2", f"hydra.run.dir={out}", cwd=tmp_path)
        assert r.returncode == 1
        line = one_error(r.stderr)
        assert "overrides.yaml" in line and "logger.mlflow.tracking_uri is refused" in line
        with pytest.raises(BlockingIOError):
            server.accept()  # nobody connected
        assert not out.exists()  # a refused command leaves no run folder
    finally:
        server.close()


@pytest.mark.slow
def test_a_shared_run_cannot_write_a_checkpoint_into_the_victims_folder(trained, tmp_path):
    target = victim(tmp_path)
    before = digest(target)
    run = _planted(trained, tmp_path, "callbacks.model_checkpoint.filename=../../../victim/pwn_best",
                   f"callbacks.last_checkpoint.dirpath={target}")
    r = run_cli(f"resume={run}", "trainer.max_epochs=2", f"hydra.run.dir={tmp_path / 'out' / 'resumed'}", cwd=tmp_path)
    assert r.returncode == 1 and "callbacks.model_checkpoint.filename is refused" in one_error(r.stderr)
    assert digest(target) == before


def test_a_place_the_user_types_is_still_confined_to_the_run(tmp_path):
    """Whatever key names it (even typed): checkpoint folders and names, logger names and
    versions, checked before training and again as each checkpoint is written or removed."""
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    from mask_cls.checkpoint_io import AtomicCheckpointIO
    from mask_cls.places import check_writes

    out = tmp_path / "run"
    out.mkdir()
    inside = [ModelCheckpoint(dirpath=out / "checkpoints", filename="epoch{epoch:03d}")]
    check_writes(out, out, [CSVLogger(out, name="csv", version="")], inside)  # the defaults pass
    bad = [([], [ModelCheckpoint(dirpath=out / "checkpoints", filename="../../escape")]),
           ([], [ModelCheckpoint(dirpath=tmp_path / "elsewhere")]),
           ([CSVLogger(out, name="csv", version="../..")], []),
           ([CSVLogger(tmp_path / "elsewhere", name="csv")], []),
           ([TensorBoardLogger(out, name="../../tb")], [])]
    for loggers, callbacks in bad:
        with pytest.raises(ConfigError, match="outside this run's directory") as e:
            check_writes(out, out, loggers, callbacks)
        assert "\n" not in str(e.value)
    io = AtomicCheckpointIO(out / "checkpoints", root=out)
    target = victim(tmp_path)
    before = digest(target)
    for path in (target / "pwn.ckpt", out / "checkpoints" / ".." / ".." / "victim" / "id_rsa"):
        with pytest.raises(ConfigError, match="outside"):
            io.save_checkpoint({"x": 1}, path)
        with pytest.raises(ConfigError, match="outside"):
            io.remove_checkpoint(path)
    assert digest(target) == before
    io.save_checkpoint({"x": torch.ones(1)}, out / "checkpoints" / "ok.ckpt")
    assert (out / "checkpoints" / "ok.ckpt").is_file()


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.sampled_from(["..", ".", "a", "b", "c"]), min_size=1, max_size=8))
def test_confinement_is_what_the_path_resolves_to(tmp_path_factory, parts):
    from mask_cls.places import within

    root = tmp_path_factory.getbasetemp() / "confine" / "run"
    depth, escaped = 0, False
    for p in parts:
        depth += -1 if p == ".." else 0 if p == "." else 1
        escaped |= depth < 0
    path = root.joinpath(*parts)
    assert within(path, root) == (not escaped or os.path.normpath(path).startswith(str(root) + os.sep)
                                  or os.path.normpath(path) == str(root))


def test_network_targets_only_where_typed():
    from mask_cls.places import check_network

    cfg = compose_cfg("logger=mlflow", "logger.mlflow.tracking_uri=http://127.0.0.1:9")
    check_network(cfg, ["logger=mlflow", "logger.mlflow.tracking_uri=http://127.0.0.1:9"])  # typed: the user's
    with pytest.raises(ConfigError, match="only when you type it"):
        check_network(cfg, ["logger=mlflow"])
    cfg = compose_cfg("logger=wandb", "logger.wandb.offline=false")
    with pytest.raises(ConfigError, match="logger.wandb.offline=False"):
        check_network(cfg, [])
    check_network(compose_cfg("logger=csv_wandb"), [])  # offline by default


# -- 3. the run directory is ours alone --------------------------------------------------------------


def _evaluate(tiny_root: Path, tmp_path: Path, run_dir: Path) -> list[str]:
    sub = tmp_path / "sub.csv"
    if not sub.exists():
        sub.write_text((tiny_root / "eval" / "info.csv").read_text())
    return ["task=evaluate", f"submission={sub}", f"answers={tiny_root / 'eval_answers.csv'}", f"hydra.run.dir={run_dir}"]


@pytest.mark.slow
def test_a_folder_with_planted_links_is_refused_and_nothing_is_written_through_them(tiny_root, tmp_path):
    target = victim(tmp_path)
    before = digest(target)
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "run.log").symlink_to(target / "id_rsa")
    (planted / "csv").symlink_to(target / "important")
    r = run_cli(*_evaluate(tiny_root, tmp_path, planted))
    assert r.returncode == 1 and "already holds files (csv, run.log)" in one_error(r.stderr)
    assert digest(target) == before and sorted(os.listdir(planted)) == ["csv", "run.log"]
    link = tmp_path / "link_run"
    link.symlink_to(target / "important")  # the run folder itself a link: the whole run would move
    r = run_cli(*_evaluate(tiny_root, tmp_path, link))
    assert r.returncode == 1 and "is a link" in one_error(r.stderr)
    assert digest(target) == before


@pytest.mark.slow
def test_a_refused_second_run_appends_nothing_to_the_first_runs_log(tiny_root, tmp_path):
    run_dir = tmp_path / "run"
    first = run_cli(*_evaluate(tiny_root, tmp_path, run_dir))
    assert first.returncode == 0, first.stderr[-2000:]
    log_before = (run_dir / "run.log").read_bytes()
    second = run_cli(*_evaluate(tiny_root, tmp_path, run_dir), "seed=7")
    assert second.returncode == 1 and "already holds" in one_error(second.stderr)
    assert (run_dir / "run.log").read_bytes() == log_before
    empty = tmp_path / "empty"
    empty.mkdir()  # an empty folder made beforehand is fine
    assert run_cli(*_evaluate(tiny_root, tmp_path, empty)).returncode == 0


@pytest.mark.slow
def test_a_refused_command_leaves_no_run_folder(tmp_path):
    r = run_cli("task=evaluate", "data.batch_size=0", cwd=tmp_path)  # refused before the run claims a folder
    assert r.returncode == 1 and "data.batch_size=0" in one_error(r.stderr)
    runs = tmp_path / "outputs" / "evaluate" / "runs"
    assert not runs.exists() or list(runs.iterdir()) == []


# -- 4. sameness by content; honesty checks fail closed ----------------------------------------------


def test_a_validation_image_with_bytes_added_is_still_that_image(tiny_copy):
    from mask_cls.data.datamodule import MaskDataModule
    from tests.test_attacks import _datamodule

    dm = MaskDataModule.from_flat(str(tiny_copy), image_size=(64, 48), n_folds=3, num_workers=0)
    dm.setup("fit")
    val_image = Path(dm.val_table["image"].iloc[0])
    folder = tiny_copy / "unl"
    folder.mkdir()
    padded = folder / "x.jpg"
    padded.write_bytes(val_image.read_bytes() + b"\x00one more byte")
    other = folder / "other.jpg"
    shutil.copy(sorted((tiny_copy / "eval" / "images").iterdir())[0], other)
    csv = folder / "pseudo.csv"
    csv.write_text(f"image,label,confidence\n{other},0,0.99\n")
    assert len(_datamodule(tiny_copy, csv).train_table) == len(dm.train_table) + 1  # an unrelated image joins
    csv.write_text(f"image,label,confidence\n{other},0,0.99\n{padded},0,0.99\n")
    with pytest.raises(DataError, match="validation images of this fold"):
        _datamodule(tiny_copy, csv)


def test_same_pixels_in_other_bytes_are_the_same_image(tmp_path):
    import cv2
    import numpy as np
    import pandas as pd

    from mask_cls.data.pseudo import among

    img = np.random.default_rng(0).integers(0, 255, (64, 48, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), img, [cv2.IMWRITE_PNG_COMPRESSION, 0])
    cv2.imwrite(str(tmp_path / "b.png"), img, [cv2.IMWRITE_PNG_COMPRESSION, 9])  # other bytes, same pixels
    img[0, 0] ^= 255
    cv2.imwrite(str(tmp_path / "c.png"), img)  # one pixel differs
    assert (tmp_path / "a.png").read_bytes() != (tmp_path / "b.png").read_bytes()
    got = among(pd.Series([str(tmp_path / "b.png"), str(tmp_path / "c.png")]), pd.Series([str(tmp_path / "a.png")]))
    assert list(got) == [True, False]


@pytest.mark.slow
def test_a_cv_teacher_without_its_fold_record_is_not_honest(cv_run, tmp_path):
    from mask_cls.ssl.teacher import fold_model

    fake = tmp_path / "fake_cv"
    shutil.copytree(cv_run, fake)
    (fake / "oof.csv").unlink()
    with pytest.raises(ConfigError, match="no record of fold 1's validation persons"):
        fold_model(fake, 1, 2, 42, ["anyone"])


def test_per_fold_pseudo_labels_without_their_persons_are_refused(tmp_path):
    from mask_cls.data.pseudo import source_csv

    (tmp_path / "pseudo.json").write_text(json.dumps({"folds": {"n_folds": 2, "split_seed": 42}}))
    with pytest.raises(DataError, match="records no validation persons for fold 1"):
        source_csv(tmp_path, 1, 2, 42, val_persons=["p1"])


# -- 5. text out is inert -----------------------------------------------------------------------------


def _fake_run(folder: Path, config: dict, f1: float) -> Path:
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    (folder / "metrics.json").write_text(json.dumps({"val/f1_best": f1}))
    return folder


def test_compare_shows_a_files_escapes_and_markup_and_writes_formulas_as_text(tmp_path, capsys):
    import pandas as pd
    from omegaconf import OmegaConf

    from mask_cls.tasks.compare import compare

    evil = "\x1b]0;pwned\x07\x1b[2J[bold red]boo[/bold red][link=http://x]y[/link]"
    a = _fake_run(tmp_path / "a", {"model": {"backbone": evil}, "seed": 1}, 0.5)
    b = _fake_run(tmp_path / "b", {"model": {"backbone": '=HYPERLINK("http://x","y")'}, "seed": -2}, 0.6)
    out = tmp_path / "out"
    out.mkdir()
    compare(OmegaConf.create({"runs": [str(a), str(b)]}), out)
    shown = capsys.readouterr().out
    assert "\x1b" not in shown and "\x07" not in shown
    assert "[bold red]boo" in shown.replace("\n", "").replace("│", "").replace(" ", "") or "[bold" in shown
    table = pd.read_csv(out / "compare.csv", dtype=str, keep_default_na=False).set_index("key")
    assert table.loc["model.backbone", "b"].startswith("'=HYPERLINK")
    assert table.loc["seed", "b"] == "-2"  # a number stays a number


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=40))
def test_inert_text_for_terminals_spreadsheets_and_markdown(text):
    import re

    from rich.text import Text

    from mask_cls.inert import csv_cell, md_code, printable, terminal

    assert not re.search(r"[\x00-\x1f\x7f-\x9f]", printable(text))
    rendered = Text.from_markup(terminal(text))
    assert rendered.spans == [] and rendered.plain.replace("\\", "") == printable(text).replace("\\", "")  # shown, not applied
    cell = csv_cell(text)
    assert not str(cell).startswith(("=", "+", "-", "@", "\t", "\r")) or _is_number(text)
    span = md_code(text)
    fence = re.match(r"`+", span)[0]
    inner = span[len(fence):-len(fence)]
    assert span.endswith(fence) and not re.search(rf"(?<!`){fence}(?!`)", inner)  # nothing inside ends it


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_the_model_card_escapes_what_it_quotes(tmp_path):
    from mask_cls.export.card import write_card

    (tmp_path / "run").mkdir()
    parity = {"opset": 17, "batches": [], "tolerance": 1e-4}
    card = write_card(tmp_path, [str(tmp_path / "run")], ["m"], ["none"], [64, 48], None,
                      {"root": "/data/`rm -rf`", "layout": "competition"}, "python run.py task=export",
                      ["model.backbone=a`b`c", "+x=<script>"], "abc", parity).read_text()
    assert "- the run's recorded overrides: ``model.backbone=a`b`c +x=<script>``" in card
    assert "- data root: `` /data/`rm -rf` `` (layout `competition`)" in card


# -- 6. every reader has a budget ----------------------------------------------------------------------


def test_an_alias_bomb_a_self_reference_and_deep_nesting_are_one_line(tmp_path):
    from mask_cls.runfiles import read_json, read_yaml

    lines, prev = ["l0: &l0 [x, x, x, x, x, x, x, x, x]"], "l0"
    for i in range(1, 9):  # 9^9 strings once expanded, in about 500 bytes
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*{prev}"] * 9) + "]")
        prev = f"l{i}"
    (tmp_path / "bomb.yaml").write_text("\n".join(lines))
    assert (tmp_path / "bomb.yaml").stat().st_size < 1000
    (tmp_path / "self.yaml").write_text("&a [*a]")
    (tmp_path / "deep.yaml").write_text("[" * 100 + "]" * 100)
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    for name, reader in (("bomb.yaml", read_yaml), ("self.yaml", read_yaml), ("deep.yaml", read_yaml),
                         ("deep.json", read_json)):
        with pytest.raises(ConfigError, match=name) as e:
            reader(tmp_path / name)
        assert "\n" not in str(e.value)
    (tmp_path / "ok.yaml").write_text("a: &a [1, 2]\nb: *a\n")  # a small alias is fine
    assert read_yaml(tmp_path / "ok.yaml") == {"a": [1, 2], "b": [1, 2]}


def test_a_reader_takes_a_file_at_its_size_limit_and_refuses_one_byte_more(tmp_path, monkeypatch):
    from mask_cls import runfiles

    monkeypatch.setattr(runfiles, "MAX_BYTES", 64)
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"a": "x" * 55}))
    assert path.stat().st_size == 64 and runfiles.read_json(path)["a"] == "x" * 55
    path.write_text(json.dumps({"a": "x" * 56}))
    with pytest.raises(ConfigError, match="65 bytes, above the 64"):
        runfiles.read_json(path)


def _in_thread(fn, timeout: float = 30):
    """Run ``fn`` in a thread; its exception, or a failure if it is still waiting after ``timeout``."""
    box: dict = {}

    def target():
        try:
            fn()
        except BaseException as e:  # noqa: BLE001
            box["e"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "the reader waits on a pipe"
    return box.get("e")


def _export_folder(folder: Path, weight: float = 1.0) -> Path:
    from safetensors.torch import save_model

    from mask_cls.module import MaskClassifier
    from mask_cls.module_config import ModuleConfig

    config = module_config() | {"image_size": [64, 48]}
    module = MaskClassifier(ModuleConfig.from_checkpoint(config))
    folder.mkdir()
    save_model(module, str(folder / "weights_0.safetensors"))
    (folder / "export.json").write_text(json.dumps({"models": [{"file": "weights_0.safetensors", "config": config,
                                                                "weight": weight}], "tta": ["none"]}))
    return folder


def test_an_export_whose_weights_are_a_pipe_or_not_finite_is_refused(tmp_path):
    from mask_cls.export.weights import load

    folder = _export_folder(tmp_path / "exp")
    assert len(load(folder)[0]) == 1  # the honest folder loads
    nan_weight = _export_folder(tmp_path / "nanw", weight=float("nan"))
    assert "finite" in str(_in_thread(lambda: load(nan_weight)))
    pipe = _export_folder(tmp_path / "fifo")
    (pipe / "weights_0.safetensors").unlink()
    os.mkfifo(pipe / "weights_0.safetensors")
    assert "not a regular file" in str(_in_thread(lambda: load(pipe)))
    (pipe / "export.json").unlink()
    os.mkfifo(pipe / "export.json")
    assert "not a regular file" in str(_in_thread(lambda: load(pipe)))


def test_nan_weights_are_refused_at_load(tmp_path):
    import numpy as np

    from mask_cls.inference.ensemble import soft_vote
    from mask_cls.models.weights import read_state

    state = {"conv.weight": torch.ones(2, 2), "bn.running_var": torch.tensor([1.0, float("nan")])}
    torch.save(state, tmp_path / "w.pth")
    with pytest.raises(ConfigError, match="bn.running_var holds NaN or Inf"):
        read_state(tmp_path / "w.pth")
    state["bn.running_var"] = torch.tensor([1.0, float("inf")])
    torch.save(state, tmp_path / "w.pth")
    with pytest.raises(ConfigError, match="NaN or Inf"):
        read_state(tmp_path / "w.pth")
    probs = [np.full((2, 18), 1 / 18), np.full((2, 18), 1 / 18)]
    with pytest.raises(ValueError, match="finite"):
        soft_vote(probs, [float("nan"), 1.0])


@pytest.mark.parametrize("name", ["image_size", "batch_size", "dropout_samples", "subcenters", "neck", "persons",
                                  "jpeg_quality", "workers"])
def test_every_bound_holds_at_its_limit_and_refuses_one_past(name):
    from mask_cls.limits import BOUNDS, bounded

    lo, hi = BOUNDS[name]
    bounded(name, lo, "k")
    bounded(name, hi, "k")
    for past in (lo - 1, hi + 1):
        with pytest.raises(ConfigError, match=f"k={past}: {name} must be whole numbers from {lo} to {hi}"):
            bounded(name, past, "k")


def test_batch_pixels_tta_views_and_workers_have_caps():
    from omegaconf import OmegaConf

    from mask_cls.limits import MAX_BATCH_PIXELS, MAX_TTA, check_run, cores

    def run(**node):
        check_run(OmegaConf.create(node))

    run(data={"image_size": [512, 512], "batch_size": MAX_BATCH_PIXELS // (512 * 512)})
    with pytest.raises(ConfigError, match="pixels in one batch"):
        run(data={"image_size": [512, 512], "batch_size": MAX_BATCH_PIXELS // (512 * 512) + 1})
    run(tta=["none"] * MAX_TTA)
    with pytest.raises(ConfigError, match=f"at most {MAX_TTA}"):
        run(tta=["none"] * (MAX_TTA + 1))
    run(data={"num_workers": cores()}, synth={"workers": cores()})
    with pytest.raises(ConfigError, match="data.num_workers"):
        run(data={"num_workers": cores() + 1})
    with pytest.raises(ConfigError, match="synth.train_persons"):
        run(synth={"train_persons": 100_001})


def test_overrides_files_have_a_line_budget(tmp_path):
    from mask_cls.run_config import MAX_LINE, MAX_LINES, recipe

    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text("seed: 1\n")
    for lines, message in ((["seed=1"] * (MAX_LINES + 1), "at most"), ([f"seed={'1' * MAX_LINE}"], "characters")):
        (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(lines))
        with pytest.raises(ConfigError, match=message):
            recipe(run, [], [], lambda overrides: None)


def test_prepare_refuses_an_output_inside_the_data_root(tiny_copy, tmp_path):
    from mask_cls.tasks import get_task

    cfg = compose_cfg("task=prepare", "data=mask", f"data.root={tiny_copy}", f"task.out={tiny_copy / 'crops'}",
                      out=tmp_path / "run")
    with pytest.raises(ConfigError, match="lies inside data.root"):
        get_task("prepare")(cfg, tmp_path / "run")
    assert not (tiny_copy / "crops").exists()


# -- secrets: masked to the end of the value, whatever it holds --------------------------------------

_secret_part = st.sampled_from(["api_key", "token", "secret", "password", "wandb_key", "Passwd", "secrets"])
_plain_part = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True).filter(
    lambda s: not any(w in s for w in ("key", "token", "secret", "password", "passwd")))


@settings(max_examples=300, deadline=None)
@given(before=st.lists(_plain_part, max_size=2), secret=_secret_part, after=st.lists(_plain_part, max_size=2),
       prefix=st.sampled_from(["", "+", "++"]),
       value=st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"),
                     min_size=1, max_size=30))
def test_a_typed_secret_is_masked_to_its_end(before, secret, after, prefix, value):
    from mask_cls.secrets import MASK, mask, mask_text

    key = ".".join([*before, secret, *after])
    line = f"{prefix}{key}={value}"
    assert mask_text(line) == f"{prefix}{key}={MASK}"
    assert mask([line, {"x": [line]}]) == [f"{prefix}{key}={MASK}", {"x": [f"{prefix}{key}={MASK}"]}]


def test_a_url_password_is_masked():
    from mask_cls.secrets import mask_text

    line = "logger.mlflow.tracking_uri=postgresql://bob:hunter2@db.example:5432/mlflow"
    assert mask_text(line) == "logger.mlflow.tracking_uri=postgresql://bob:***@db.example:5432/mlflow"


@pytest.mark.slow
def test_the_config_line_of_a_command_that_reads_a_run_shows_the_run_it_was_made_of(trained, tmp_path):
    """task=predict run_dir=RUN: the config line names the groups the run was re-composed with
    (data=mask, not the default data=synthetic), then the recipe taken from it, then what was typed."""
    r = run_cli("task=predict", f"run_dir={trained}", f"hydra.run.dir={tmp_path / 'pred'}", "data.num_workers=0")
    assert r.returncode == 0, r.stderr[-3000:]
    lines = (r.stdout + r.stderr).splitlines()
    config = next(line for line in lines if "config: " in line)
    assert "task=predict" in config and "data=mask" in config and "data=synthetic" not in config
    recipe = next(line for line in lines if f"recipe of {trained}: " in line)
    assert "model.backbone=mobilenetv3_small_050" in recipe and "data.image_size=[64,48]" in recipe
    assert any("changed: task=predict" in line for line in lines)


def test_a_dated_run_folder_taken_in_the_same_second_gets_the_next_suffix(tmp_path):
    from mask_cls.output_folder import claim_dated, created
    from mask_cls.resolvers import sweep_db

    base = tmp_path / "runs" / "2026-12-07_06-51-19"
    assert claim_dated(base) == base and base.is_dir()  # free: taken as it is
    (base / "run.log").write_text("an earlier run\n")
    assert claim_dated(base) == tmp_path / "runs" / "2026-12-07_06-51-19_2"
    assert claim_dated(base) == tmp_path / "runs" / "2026-12-07_06-51-19_3"
    assert (tmp_path / "runs" / "2026-12-07_06-51-19_3").resolve() in created  # a refusal may remove its own
    # the Optuna database of a default sweep stays beside the dated folders, suffix or not
    assert sweep_db(str(base) + "_2") == sweep_db(str(base)) == str(tmp_path / "runs")
    assert sweep_db(str(tmp_path / "mine")) == str(tmp_path / "mine")


@pytest.mark.slow
def test_a_command_started_in_the_same_second_as_another_gets_its_own_folder(tmp_path):
    """Folders of 'earlier runs' for every second of the next minute: the command lands beside its
    second's one, with _2, and runs; a typed hydra.run.dir that holds files is still refused."""
    import datetime

    runs = tmp_path / "outputs" / "synth" / "runs"
    now = datetime.datetime.now()
    for s in range(60):
        taken = runs / (now + datetime.timedelta(seconds=s)).strftime("%Y-%m-%d_%H-%M-%S")
        taken.mkdir(parents=True)
        (taken / "run.log").write_text("an earlier run\n")
    r = run_cli("task=synth", "data.root=d", "synth.train_persons=2", "synth.eval_persons=1",
                "synth.image_size=[32,32]", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    (mine,) = [p for p in runs.iterdir() if p.name.endswith("_2")]
    assert (mine / "manifest.json").is_file() and "earlier" not in (mine / "run.log").read_text()
    taken = sorted(p for p in runs.iterdir() if not p.name.endswith("_2"))[0]
    r = run_cli("task=synth", "data.root=e", f"hydra.run.dir={taken}", cwd=tmp_path)
    assert r.returncode == 1 and "already holds files" in r.stderr
