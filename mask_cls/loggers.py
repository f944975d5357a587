"""Loggers of ``conf/logger`` that need a word more than Lightning's own."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import MLFlowLogger as _LightningMLFlowLogger
from lightning.pytorch.loggers import WandbLogger as _LightningWandbLogger

from mask_cls.errors import ConfigError


class WandbLogger(_LightningWandbLogger):
    """Lightning's ``WandbLogger`` without the ``anonymous`` argument it always passes to
    ``wandb.init`` (``None`` unless asked for): current wandb prints a warning about that setting
    on every run, which nobody using this project can act on."""

    def __init__(self, *args: Any, anonymous: bool | None = None, **kwargs: Any) -> None:
        super().__init__(*args, anonymous=anonymous, **kwargs)  # type: ignore[misc]  # (*args: its positionals)
        if not anonymous:
            self._wandb_init.pop("anonymous", None)


#: the store's files inside its folder
STORE_DB, STORE_ARTIFACTS = "mlflow.db", "mlflow_artifacts"


class MLFlowLogger(_LightningMLFlowLogger):
    """Lightning's ``MLFlowLogger`` with a local store by default: ``store_dir/mlflow.db`` (SQLite:
    MLflow 3 refuses to open its old file store) and the artifacts beside it in
    ``store_dir/mlflow_artifacts``. ``store_dir`` null: the run directory, or the sweep directory
    under ``-m`` (a cv run's folds and a sweep's jobs share one store, as a wandb group does).
    A store we did not name (``tracking_uri=...``) is the user's: used as it is."""

    def __init__(self, store_dir: str | None = None, tracking_uri: str | None = None, **kwargs: Any) -> None:
        self._confined: Path | None = None
        if not tracking_uri:
            root = Path(store_dir) if store_dir else group_dir()
            root = root.resolve()
            root.mkdir(parents=True, exist_ok=True)
            self._confined = root / STORE_ARTIFACTS
            tracking_uri = f"sqlite:///{root / STORE_DB}"
            kwargs["artifact_location"] = self._confined.as_uri()
        for name in ("alembic", "mlflow.store.db.utils", "mlflow.store.db"):  # schema-creation chatter
            logging.getLogger(name).setLevel(logging.WARNING)
        super().__init__(tracking_uri=tracking_uri, **kwargs)

    def log_hyperparams(self, params: Any) -> None:
        """Params under the dotted keys users type (``optim.lr``, not Lightning's ``optim/lr``)."""
        from lightning.fabric.utilities.logger import _convert_params

        super().log_hyperparams(_dotted(_convert_params(params)))

    @property
    def experiment(self) -> Any:
        """The client, after checking that a store we named keeps its artifacts inside it: an
        experiment row of a planted database could send every artifact to any folder."""
        client = super().experiment
        if self._confined is not None:
            where = client.get_experiment(self._experiment_id).artifact_location
            if where.rstrip("/") != self._confined.as_uri():
                raise ConfigError(f"{self._confined.parent / STORE_DB}: its experiment {self._experiment_name!r} keeps "
                                  f"artifacts in {where}, not in {self._confined}; refusing to write there")
            self._confined = None  # checked once
        return client


def group_dir() -> Path:
    """Where a run's default MLflow store lives: the sweep directory under ``-m``, else the run
    directory (a cv run's folds log there too); outside Hydra, the current directory."""
    from hydra.core.hydra_config import HydraConfig

    from mask_cls.rundir import in_multirun

    if not HydraConfig.initialized():  # built from Python: the current directory, as MLflow's own default
        return Path.cwd()
    hc = HydraConfig.get()
    return Path(hc.sweep.dir) if in_multirun() else Path(hc.runtime.output_dir)


def _dotted(node: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping as one level of ``a.b.c`` keys (lists and values kept as they are)."""
    if not isinstance(node, dict):
        return {prefix: node}
    out: dict[str, Any] = {}
    for k, v in node.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        out |= _dotted(v, key) if isinstance(v, dict) and v else {key: v}
    return out
