"""Every experiment config composes and runs one batch of train / val / predict."""

from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

pytestmark = pytest.mark.slow  # every test here starts a command

EXPERIMENTS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_runs_fast_dev_run(name, tiny_root, tmp_path: Path):
    out = tmp_path / name
    r = run_cli(f"experiment={name}", "data=mask", f"data.root={tiny_root}", "debug=fdr",
                "data.image_size=[64,48]", "data.batch_size=4", "trainer.enable_progress_bar=false",
                f"hydra.run.dir={out}")
    assert r.returncode == 0, r.stderr[-3000:]
    assert (out / "metrics.json").is_file() and not (out / "submission.csv").exists()
