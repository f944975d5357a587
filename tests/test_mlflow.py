"""logger=mlflow as its users expect, read back from the store with MLflow's own client."""

from __future__ import annotations

import json

import pytest

from mask_cls.errors import ConfigError
from mask_cls.loggers import MLFlowLogger
from tests.conftest import FAST, run_cli

mlflow = pytest.importorskip("mlflow")


def _store(folder):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    exp = client.get_experiment_by_name("mask_cls")
    return client, exp, {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}


def _artifact_bytes(client, run, path, tmp_path) -> bytes:
    return open(client.download_artifacts(run.info.run_id, path, str(tmp_path)), "rb").read()


@pytest.mark.slow
def test_cv_run_is_one_store_with_a_run_per_fold_and_the_summary(tiny_root, tmp_path):
    out = tmp_path / "cvrun"
    r = run_cli("task=cv", "data=mask", f"data.root={tiny_root}", *FAST, "trainer.max_epochs=2", "logger=mlflow",
                f"hydra.run.dir={out}")
    assert r.returncode == 0, r.stderr[-3000:]
    client, exp, runs = _store(out)
    assert exp.artifact_location == (out / "mlflow_artifacts").resolve().as_uri()  # inside the run
    assert set(runs) == {"fold_0", "fold_1", "fold_2", "cv"}
    for name, run in runs.items():
        assert run.info.status == "FINISHED"
        assert run.data.tags["group"] == "cvrun"  # one group: the cv run, as wandb's
        assert run.data.tags["job_type"] == ("cv" if name == "cv" else "train")
        assert run.data.params["data.n_folds"] == "3" and run.data.params["optim.lr"] == "0.001"  # keys as typed
    manifest = json.loads((out / "manifest.json").read_text())
    for k in range(3):
        fold = runs[f"fold_{k}"]
        history = client.get_metric_history(fold.info.run_id, "val/f1")
        assert len(history) == 2  # per epoch
        metrics = json.loads((out / f"fold_{k}" / "metrics.json").read_text())
        assert history[-1].value == pytest.approx(metrics["val/f1"])
        assert fold.data.params["data.fold"] == str(k)
        assert fold.data.params["manifest/code/commit"] == manifest["code"]["commit"]
    summary = runs["cv"]
    cv = json.loads((out / "cv.json").read_text())
    assert summary.data.metrics["cv/f1"] == pytest.approx(cv["cv/f1"])
    assert _artifact_bytes(client, summary, "oof.csv", tmp_path / "dl") == (out / "oof.csv").read_bytes()
    figures = [a.path for a in client.list_artifacts(summary.info.run_id, "report/cv_out-of-fold")]
    assert {f.rsplit("/", 1)[1] for f in figures} >= {"confusion.png", "reliability.png"}
    for f in figures:
        assert _artifact_bytes(client, summary, f, tmp_path / "dl2") == (out / "report" / f.rsplit("/", 1)[1]).read_bytes()


@pytest.mark.slow
def test_a_sweep_shares_one_store_grouped_by_the_sweep(tiny_root, tmp_path):
    r = run_cli("-m", "data=mask", f"data.root={tiny_root}", *FAST, "trainer.limit_train_batches=2",
                "optim.lr=1e-3,3e-3", "logger=mlflow", cwd=tmp_path)  # as typed: the sweep folder is Hydra's
    assert r.returncode == 0, r.stderr[-3000:]
    (sweep,) = [p for p in (tmp_path / "outputs" / "train" / "multiruns").iterdir() if p.is_dir()]
    client, exp, runs = _store(sweep)
    assert not any((sweep / str(j) / "mlflow.db").exists() for j in (0, 1))
    assert sorted(run.data.params["optim.lr"] for run in runs.values()) == ["0.001", "0.003"]
    for run in runs.values():
        assert run.data.tags["group"] == sweep.name and run.info.run_name.startswith("optim.lr=")  # swept key first
        job = sweep / ("0" if run.data.params["optim.lr"] == "0.001" else "1")
        assert run.data.metrics["val/f1"] == pytest.approx(json.loads((job / "metrics.json").read_text())["val/f1"])
        report_scores = json.loads((job / "report" / "scores.json").read_text())  # the report's F1 (TTA) too
        assert run.data.metrics["report/f1"] == pytest.approx(report_scores["f1"])
        assert run.data.metrics["report/acc"] == pytest.approx(report_scores["acc"])
        report = [a.path for a in client.list_artifacts(run.info.run_id, "report")]
        pngs = [a.path for folder in report for a in client.list_artifacts(run.info.run_id, folder)]
        assert {"confusion.png", "reliability.png", "reliability_calibrated.png"} <= {p.rsplit("/", 1)[1] for p in pngs}
        for p in pngs:
            assert _artifact_bytes(client, run, p, tmp_path / run.info.run_id) == \
                (job / "report" / p.rsplit("/", 1)[1]).read_bytes()


def test_a_planted_store_cannot_send_artifacts_outside_it(tmp_path):
    """A database left in a shared folder whose experiment keeps artifacts elsewhere is refused
    before anything is written."""
    from mlflow.tracking import MlflowClient

    store, elsewhere = tmp_path / "store", tmp_path / "elsewhere"
    store.mkdir()
    MlflowClient(f"sqlite:///{store / 'mlflow.db'}").create_experiment("mask_cls", artifact_location=elsewhere.as_uri())
    logger = MLFlowLogger(store_dir=str(store), experiment_name="mask_cls")
    with pytest.raises(ConfigError, match="elsewhere"):
        logger.log_metrics({"x": 1.0})
    assert not elsewhere.exists()
    fresh = MLFlowLogger(store_dir=str(tmp_path / "fresh"), experiment_name="mask_cls")
    fresh.log_metrics({"x": 1.0}, step=3)
    history = fresh.experiment.get_metric_history(fresh.run_id, "x")
    assert [(m.step, m.value) for m in history] == [(3, 1.0)]
