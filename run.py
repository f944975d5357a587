"""mask_cls entry point: ``python run.py task=<synth|train|evaluate> [overrides]``."""

from __future__ import annotations

import os
import sys

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    from mask_cls.errors import MaskClsError, one_line
    from mask_cls.tasks import get_task

    try:
        return get_task(cfg.task.name)(cfg)
    except MaskClsError as e:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"error: {one_line(e)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
