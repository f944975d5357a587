"""The house's rules, read from the source: imports run downward only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "mask_cls"


def imports(path: Path) -> set[str]:
    """Every ``mask_cls...`` module a file imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m == "mask_cls" or m.startswith("mask_cls.")}


def module_files(under: str = "") -> dict[str, set[str]]:
    return {str(p.relative_to(ROOT)): imports(p) for p in sorted((PACKAGE / under).rglob("*.py"))}


def test_nothing_below_the_tasks_imports_them():
    """Tasks are the top floor: only run.py dispatches to them (and tasks share among themselves)."""
    offenders = {f: sorted(m for m in mods if m.startswith("mask_cls.tasks")) for f, mods in module_files().items()
                 if not f.startswith("mask_cls/tasks/")}
    assert not {f: m for f, m in offenders.items() if m}


def test_models_do_not_reach_into_data():
    offenders = {f: sorted(m for m in mods if m.startswith("mask_cls.data")) for f, mods in module_files("models").items()}
    assert not {f: m for f, m in offenders.items() if m}


def test_the_registry_mechanism_imports_no_plugin_package():
    """Each package owns its registry; registry.py imports nothing of the project but its errors."""
    assert imports(PACKAGE / "registry.py") <= {"mask_cls.errors", "mask_cls.errors.ConfigError"}


def test_the_rule_sees_a_planted_upward_import(tmp_path):
    """The parser finds imports inside functions too (where the old upward arrows hid)."""
    f = tmp_path / "x.py"
    f.write_text("def g():\n    from mask_cls.tasks.train import train\n    import mask_cls.data.layouts.competition.tables\n")
    assert imports(f) >= {"mask_cls.tasks.train", "mask_cls.data.layouts.competition.tables"}


def test_the_module_config_is_one_type_with_its_defaults_in_one_place():
    """A run's config, a checkpoint's dict and a test's dict all become one ModuleConfig; a key
    it does not know is refused (a checkpoint is data), and what a checkpoint saves reads back equal."""
    import pytest

    from mask_cls.errors import ConfigError
    from mask_cls.module_config import ModuleConfig
    from tests.conftest import compose_cfg, module_config

    cfg = compose_cfg("model.backbone=resnet10t", "ssl=uda", "augment=seed_cutmix")
    mc = ModuleConfig.from_run_config(cfg, [1] * 18)
    assert mc.image_size == list(cfg.data.image_size) and mc.class_counts == [1] * 18
    assert mc.augment_batch["cutmix"]["p"] == cfg.augment.batch.cutmix.p
    assert mc.ssl["name"] == "uda" and "weak" not in mc.ssl and "strong" not in mc.ssl  # training-only views
    assert ModuleConfig.from_checkpoint(mc.as_dict()).model["pretrained"] is False  # weights come from the file
    assert ModuleConfig.from_mapping(mc.as_dict()) == mc
    small = ModuleConfig.from_mapping({k: v for k, v in module_config().items() if v is not None})
    assert small.ssl == {"name": "none"} and small.augment_batch == {} and small.finetune == {}
    with pytest.raises(ConfigError, match="unknown key 'evil'"):
        ModuleConfig.from_mapping(module_config() | {"evil": 1})


def test_one_layout_object_reads_the_eval_table_once(tiny_root, monkeypatch):
    """The engine opens the dataset once; its eval table is read once however many parts of a
    run (the submission, UDA's unlabeled stream, the DataModule) ask for it."""
    from mask_cls.data import layouts
    from mask_cls.data.datamodule import MaskDataModule
    from mask_cls.data.layouts import competition
    from mask_cls.data.unlabeled import unlabeled_images

    reads = []
    real = competition.read_eval
    monkeypatch.setattr(competition, "read_eval", lambda *a, **k: reads.append(1) or real(*a, **k))
    layout = layouts.open({"layout": "competition", "root": str(tiny_root)})
    first = layout.read_eval()
    first["image"] = "changed by a caller"  # each caller gets its own copy
    assert unlabeled_images("eval", layout) == list(layout.read_eval()["image"])
    dm = MaskDataModule.from_flat(None, image_size=(64, 48), batch_size=4, num_workers=0, layout=layout,
                        ssl={"name": "uda", "unlabeled": "eval"})
    dm.prepare_data()
    dm.setup()
    assert len(reads) == 1 and dm.layout is layout and len(dm.unlabeled) == len(dm.eval_table)


#: functions over 50 lines, each with the reason it is still long (a debt, named); none today
LONG_FUNCTIONS: dict[tuple[str, str], str] = {}


def test_files_and_functions_stay_small():
    """No file over 300 lines and no function over 50 in mask_cls/, except the named debts."""
    big_files = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py")
                 if (n := len(p.read_text().splitlines())) > 300}
    long = {}
    for p in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > 50:
                long[(str(p.relative_to(ROOT)), node.name)] = node.end_lineno - node.lineno + 1
    assert not big_files
    assert set(long) <= set(LONG_FUNCTIONS), {k: v for k, v in long.items() if k not in LONG_FUNCTIONS}


def test_a_test_not_marked_slow_cannot_start_a_command():
    """The slow marks are checked as the tests run: here (not marked) run.py is refused, git is not."""
    import subprocess
    import sys

    import pytest

    from tests.slow_marks import UnmarkedSlowTest

    with pytest.raises(UnmarkedSlowTest, match="mark it @pytest.mark.slow"):
        subprocess.run([sys.executable, "-c", "pass"])
    assert subprocess.run(["git", "--version"], capture_output=True).returncode == 0


#: tests that start processes working at once (DDP ranks, two nodes, a launcher's jobs, two runs);
#: a parametrised one as (function, parameter)
SPAWNING = ("test_ddp_sim_two_processes", "test_two_node_ddp_on_cpu",
            "test_submitit_local_launcher_two_jobs_and_a_results_table",
            "test_confirm_through_a_hydra_launcher_then_again_reusing_its_jobs", ("test_bench_quick", "parallel_runs"))


def _spawn_marked() -> set[str | tuple[str, str]]:
    """Test functions whose decorators carry ``pytest.mark.spawns`` (a parameter's marks too), read
    from the source: the check holds whatever a run collects."""
    def is_spawns(node: ast.AST) -> bool:
        return isinstance(node, ast.Attribute) and node.attr == "spawns"

    found: set[str | tuple[str, str]] = set()
    for path in (ROOT / "tests").glob("test_*.py"):
        for fn in ast.walk(ast.parse(path.read_text())):
            if not isinstance(fn, ast.FunctionDef):
                continue
            for deco in fn.decorator_list:
                if is_spawns(deco):
                    found.add(fn.name)
                for call in ast.walk(deco):  # pytest.param("x", marks=pytest.mark.spawns)
                    if isinstance(call, ast.Call) and any(k.arg == "marks" and is_spawns(k.value) for k in call.keywords):
                        found.add((fn.name, call.args[0].value))  # type: ignore[attr-defined]
    return found


def test_tests_that_spawn_processes_run_one_at_a_time(tmp_path):
    from filelock import Timeout

    from tests.conftest import spawn_lock

    assert set(SPAWNING) <= _spawn_marked(), set(SPAWNING) - _spawn_marked()
    with spawn_lock(tmp_path):  # held by one worker: the other's acquire waits
        other = spawn_lock(tmp_path)
        with pytest.raises(Timeout):
            other.acquire(timeout=0.2)
    other.acquire(timeout=5)
    other.release()


def test_every_spawning_test_runs_first_on_one_worker():
    """worksteal gives the first half of the collection to one worker: with every ``spawns`` test
    in conftest's ``LONGEST`` (sorted to the front), none waits on the lock while the other runs one."""
    from tests.conftest import LONGEST

    for test in _spawn_marked():
        name = test if isinstance(test, str) else f"{test[0]}[{test[1]}]"
        assert any(key in name for key in LONGEST), f"{name}: a spawns test not in conftest.LONGEST"
