"""``task=evaluate submission=FILE answers=FILE``: score a submission like the leaderboard."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from mask_cls.errors import ConfigError, DataError
from mask_cls.io import write_json
from mask_cls.rundir import log
from mask_cls.tasks import register


def print_scores(scores: dict, source: str) -> None:
    print(f"submission: {source}")
    table = Table(title="leaderboard score")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k in ("f1", "acc", "f1_mask", "f1_gender", "f1_age"):
        table.add_row(k, f"{scores[k]:.4f}")
    table.add_row("images", str(scores["n"]))
    Console().print(table)


@register("evaluate")
def evaluate(cfg: DictConfig, out: Path) -> float:
    if not cfg.get("submission") or not cfg.get("answers"):
        raise ConfigError("task=evaluate needs submission=FILE and answers=FILE")
    sub_path, ans_path = Path(cfg.submission), Path(cfg.answers)
    for path, what in ((sub_path, "submission"), (ans_path, "answers")):
        if not path.is_file():  # before pandas loads: a wrong path is reported at once
            raise DataError(f"{path}: {what} file not found")
    from mask_cls.evaluation.metrics import score
    from mask_cls.evaluation.submission import align, read_labels

    y_true, y_pred = align(read_labels(sub_path, "submission"), read_labels(ans_path, "answers"),
                           sub_path, ans_path)
    scores = score(y_true, y_pred)
    write_json({**scores, "submission": str(sub_path.resolve()), "answers": str(ans_path.resolve())},
               out / "scores.json")
    print_scores(scores, f"{sub_path}")
    log.info("scores written to %s", out / "scores.json")
    return scores["f1"]
