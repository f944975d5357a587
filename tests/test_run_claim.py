"""The run folder's claim (``rundir.fresh_run_dir``), the layer behind the callback's check: what
a sweep job's folder or a folder filled between the check and the claim may hold."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from mask_cls import rundir
from mask_cls.errors import ConfigError


def _cfg(out):
    return OmegaConf.create({"paths": {"output_dir": str(out)}, "hydra": {}})


@pytest.mark.parametrize("name", rundir.RESULT_FILES + ("notes.txt",))
def test_a_folder_holding_any_earlier_result_is_refused_by_name(tmp_path, name):
    out = tmp_path / "run"
    out.mkdir()
    if name in ("checkpoints", "fold_0", ".hydra"):  # the folders among them
        (out / name).mkdir()
    else:
        (out / name).write_text("x")
    with pytest.raises(ConfigError, match=rf"already holds an earlier run \({name}\)"):
        rundir.fresh_run_dir(_cfg(out))
    assert not (out / rundir.MARKER).exists() or name == rundir.MARKER


def test_hydras_own_log_is_not_an_earlier_run_but_a_link_named_like_it_is(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / rundir.JOB_LOG).write_text("this run's first lines\n")
    assert rundir.fresh_run_dir(_cfg(out)) == out.resolve() and (out / rundir.MARKER).is_file()
    other = tmp_path / "other"
    other.mkdir()
    (other / rundir.JOB_LOG).symlink_to(tmp_path / "victim.txt")
    with pytest.raises(ConfigError, match="already holds an earlier run"):
        rundir.fresh_run_dir(_cfg(other))
