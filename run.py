"""mask_cls entry point: ``python run.py task=<train|cv|predict|pseudo|evaluate|check|synth|prepare|preview> [overrides]``."""

from __future__ import annotations

import os
import sys

import hydra
from omegaconf import DictConfig

from mask_cls.resolvers import register

register()


def fail(cfg: DictConfig, message: str, code: int = 1) -> None:
    """One ``error:`` line; a claimed run directory keeps the reason in ``failed.txt``, one the
    command created but never claimed is removed."""
    from mask_cls.output_folder import discard_unclaimed
    from mask_cls.rundir import claimed, run_dir

    print(f"error: {message}", file=sys.stderr)
    out = claimed(cfg)
    if out is not None:
        (out / "failed.txt").write_text(message + "\n")
    else:  # refused before the claim: no run folder is left behind
        discard_unclaimed(run_dir(cfg))
    sys.exit(code)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    from mask_cls.console import quiet

    quiet()
    from mask_cls import limits, manifest, places, preflight, progress
    from mask_cls.errors import describe, is_expected
    from mask_cls.run_config import source_of, with_run_config
    from mask_cls.rundir import (
        finish_loggers,
        fresh_run_dir,
        in_multirun,
        is_worker_process,
        run_dir,
        typed_overrides,
    )
    from mask_cls.tasks import get_task

    try:
        if source_of(cfg):
            cfg = with_run_config(cfg)  # re-composed: conf/ + the run's checked recipe + what was typed
        preflight.announce(cfg, run_dir(cfg).resolve())  # the first line, before anything heavy loads
        preflight.show_config(cfg)
        limits.check_run(cfg)
        places.check_network(cfg, typed_overrides())  # a server or wandb online only where typed
        progress.configure(**(cfg.get("progress") or {}))
        if cfg.get("data") is not None and cfg.data.get("max_image_pixels") is not None:
            from mask_cls.data.pixel_limit import set_max_pixels

            set_max_pixels(cfg.data.max_image_pixels)
        if not in_multirun():  # a refused single command leaves no folder; a sweep job keeps its failed.txt
            preflight.check(cfg)  # paths, tables, columns, backbone name: one line within a second
        out = fresh_run_dir(cfg)  # claimed once, before any work: two runs never share a directory
        if in_multirun():
            preflight.check(cfg)
        if not is_worker_process():
            manifest.write(out, manifest.build())  # command, code, versions, host: in every run
        return get_task(cfg.task.name)(cfg, out)  # only now torch, Lightning or timm load
    except SystemExit as e:
        if type(e).__name__ != "SIGTERMException":
            raise
        # Lightning's signal exception derives from SystemExit with no code: it would exit 0
        fail(cfg, "stopped by SIGTERM; the run's checkpoints/last.ckpt (saved after each epoch) "
                  "continues with resume=<this run directory>", 143)
    except Exception as e:
        from hydra.errors import InstantiationException

        while isinstance(e, InstantiationException) and e.__cause__ is not None:
            e = e.__cause__  # the error raised while Hydra built an object: the user's one line
        if in_multirun():
            from mask_cls.rundir import claimed

            if claimed(cfg) is not None:  # the sweep's results table shows why
                (claimed(cfg) / "failed.txt").write_text(describe(e) + "\n")
        if not is_expected(e) or os.environ.get("HYDRA_FULL_ERROR") == "1" or in_multirun():
            raise  # a sweep records the failed job and goes on; exiting would end the whole sweep
        fail(cfg, describe(e))
    finally:
        finish_loggers()  # each multirun job gets its own wandb run


def skip_mode_probe(argv: list[str]) -> None:
    """Hydra composes the whole config once only to learn whether the config asks for a sweep
    (``hydra.mode``), then again to run. When nothing on the command line can ask for one (no
    ``-m``, no flag, no ``hparams_search``, ``experiment``, ``hydra.mode`` or sweeper), the answer is
    the default, and the probe is skipped: a fifth of a second off every start."""
    sweepers = ("hparams_search", "experiment", "hydra.mode", "hydra/sweeper", "hydra.sweeper")
    if any(a.startswith("-") or a.split("=", 1)[0].lstrip("+~").startswith(sweepers) for a in argv):
        return
    from hydra._internal.hydra import Hydra

    if callable(getattr(Hydra, "get_mode", None)):  # hydra-core 1.3: returns cfg.hydra.mode, None by default
        Hydra.get_mode = lambda self, config_name, overrides: None


if __name__ == "__main__":
    from mask_cls.typos import check_argv

    typo = check_argv(sys.argv[1:])  # a misspelt key or option: one line with the fix, before Hydra
    if typo:
        print(f"error: {typo}", file=sys.stderr)
        sys.exit(1)
    skip_mode_probe(sys.argv[1:])
    main()
