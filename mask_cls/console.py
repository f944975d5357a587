"""A quiet console: what a user cannot act on is not printed. Installed by run.py before any
heavy import (warning filters apply when a warning is issued, in this process and in the
DataLoader workers it forks)."""

from __future__ import annotations

import logging
import warnings

#: warnings of the libraries that no setting of ours or the user's changes
NOISE = (
    r".*isinstance\(treespec, LeafSpec\).*",  # Lightning's own use of a deprecated torch API
    r".*smaller than the logging interval.*",  # a short epoch: the per-epoch metrics are logged anyway
    r".*The `srun` command is available on your system but is not used.*",
)
#: log lines of the libraries that advertise or narrate internals
CHATTER = ("litlogger", "to estimate number of stepping batches", "`anonymous` setting",
           "not found. Creating it")  # (the last: MLflow's experiment, made in a new store)


#: Lightning's INFO lines a user cannot act on: kept in run.log, not shown on the screen
SCREEN_ONLY_QUIET = ("Seed set to", "GPU available:", "TPU available:", "HPU available:", "weights_only")


class _ScreenQuiet(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not any(str(record.msg).startswith(c) or c == "weights_only" and c in str(record.msg)
                       for c in SCREEN_ONLY_QUIET)


class _DropChatter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not any(c in str(record.msg) for c in CHATTER)


_installed = False


def quiet() -> None:
    """Install the filters once per process (every job of a multirun calls it); the screen's own
    filter on the console handlers Hydra made for this job (its log file keeps every line)."""
    global _installed
    for handler in logging.getLogger().handlers:
        if not isinstance(handler, logging.FileHandler) and not any(isinstance(f, _ScreenQuiet) for f in handler.filters):
            handler.addFilter(_ScreenQuiet())
    if _installed:
        return
    _installed = True
    for pattern in NOISE:
        warnings.filterwarnings("ignore", message=pattern)
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero", "wandb",
                 "lightning.pytorch.loggers.mlflow"):
        logging.getLogger(name).addFilter(_DropChatter())
