"""mask_cls entry point: ``python run.py task=<train|cv|predict|pseudo|evaluate|check|synth|prepare|preview> [overrides]``."""

from __future__ import annotations

import os
import sys

import hydra
from omegaconf import DictConfig

from mask_cls.resolvers import register

register()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    from mask_cls.errors import describe, is_expected
    from mask_cls.tasks import get_task
    from mask_cls.tasks.common import finish_loggers, in_multirun

    try:
        return get_task(cfg.task.name)(cfg)
    except Exception as e:
        if not is_expected(e) or os.environ.get("HYDRA_FULL_ERROR") == "1" or in_multirun():
            raise  # a sweep records the failed job and goes on; exiting would end the whole sweep
        print(f"error: {describe(e)}", file=sys.stderr)
        sys.exit(1)
    finally:
        finish_loggers()  # each multirun job gets its own wandb run


if __name__ == "__main__":
    main()
