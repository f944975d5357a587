"""Temperature scaling (Guo et al., 2017): one temperature per head output, fitted on held-out
persons (a train run's validation fold, a cv run's out-of-fold predictions) by minimising the
negative log-likelihood of the TTA-averaged probabilities. It leaves each view's ranking alone
and makes the confidences mean what they say; ``calibration.json`` keeps it with the run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mask_cls.errors import ConfigError
from mask_cls.io import write_json
from mask_cls.models.heads.base import Head
from mask_cls.runfiles import read_json

NAME = "calibration.json"
CALIBRATED = "predictions_calibrated.csv"  # the validation predictions with the temperatures (task=pseudo's estimate)
LIMITS = (0.05, 50.0)  # a temperature outside this is a sign of a broken fit, not a calibration
MIN_HALF = 20  # persons each half of the validation persons needs for the held-out check of the temperatures


def probs(head: Head, logits: Sequence[torch.Tensor], temperatures: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """(N, 18) probabilities averaged over views; ``logits``: per output (views, N, classes)."""
    t = torch.as_tensor(temperatures, dtype=torch.float32)
    views = logits[0].shape[0]
    total = head.probs([z[0] / t[k] for k, z in enumerate(logits)])
    for v in range(1, views):
        total = total + head.probs([z[v] / t[k] for k, z in enumerate(logits)])
    return total / views


def fit(head: Head, logits: Sequence[torch.Tensor], y: Sequence[int], steps: int = 200) -> list[float]:
    """Temperatures minimising the NLL of the true 18-class labels ``y`` (one per output)."""
    target = torch.as_tensor(np.asarray(y), dtype=torch.long)
    logits = [z.clone() for z in logits]  # normal tensors (predictions come from inference mode)
    log_t = torch.zeros(len(logits), requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        p = probs(head, logits, log_t.exp()).clamp_min(1e-12)
        loss = -p.log().gather(1, target[:, None]).mean()
        loss.backward()
        return loss

    opt.step(closure)
    found = [float(v) for v in log_t.detach().exp().clamp(*LIMITS)]
    return found


def nll(p: np.ndarray, y: Sequence[int] | np.ndarray) -> float:
    return float(-np.log(np.clip(p[np.arange(len(p)), np.asarray(y)], 1e-12, None)).mean())


def checkpoint_id(path: str | Path) -> dict[str, str]:
    """Which checkpoint temperatures belong to: its file name and the SHA-256 of its bytes."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"name": Path(path).name, "sha256": digest.hexdigest()}


def cross_fitted(head: Head, logits: Sequence[torch.Tensor], y: Sequence[int],
                 persons: Sequence[str]) -> dict[str, Any] | None:
    """Whether temperatures help persons they were not fitted on: the validation persons in two
    halves (every other person in sorted order), each half scored with the temperatures fitted on
    the other (NLL, with and without); None where a half has fewer than ``MIN_HALF`` persons
    (too few to tell: the temperatures fitted on all of them are kept, as a run without the check)."""
    ids = sorted(set(map(str, persons)))
    if len(ids[1::2]) < MIN_HALF:
        return None
    first = np.isin(np.asarray(list(map(str, persons))), ids[::2])
    target = np.asarray(y)
    halves = [first, ~first]
    before = after = 0.0
    for fit_on, score_on in ((halves[0], halves[1]), (halves[1], halves[0])):
        a, b = torch.as_tensor(np.flatnonzero(fit_on)), torch.as_tensor(np.flatnonzero(score_on))
        temps = fit(head, [z[:, a] for z in logits], target[fit_on].tolist())
        held = [z[:, b] for z in logits]
        with torch.no_grad():
            after += nll(probs(head, held, temps).numpy(), target[score_on]) * len(b)
            before += nll(probs(head, held, [1.0] * len(held)).numpy(), target[score_on]) * len(b)
    return {"nll_before": before / len(target), "nll_after": after / len(target), "halves": 2}


def write(out: Path, temperatures: list[float], outputs: Sequence[str], before: np.ndarray, after: np.ndarray,
          y: Sequence[int], fitted_on: str, checkpoint: str | Path | None = None,
          check: dict[str, Any] | None = None) -> dict[str, Any]:
    """``calibration.json``: the temperatures, the checkpoint they were fitted for, what they did
    on the persons they were fitted on, and whether they are applied (``check``: held-out halves)."""
    from mask_cls.evaluation.calibration import expected_calibration_error

    applied = check is None or check["nll_after"] < check["nll_before"]
    record = {"temperatures": dict(zip(outputs, temperatures)), "fitted_on": fitted_on, "images": len(y),
              "checkpoint": checkpoint_id(checkpoint) if checkpoint else None,
              "ece_before": expected_calibration_error(np.asarray(y), before),
              "ece_after": expected_calibration_error(np.asarray(y), after),
              "nll_before": nll(before, y), "nll_after": nll(after, y),
              "applied": applied, "cross_fitted": check}
    write_json(record, out / NAME)
    return record


def read(run: Path, outputs: Sequence[str], checkpoint: str | Path | None = None) -> list[float] | None:
    """The run's temperatures in output order, or None where the run has no calibration, or where
    they were fitted for another checkpoint than ``checkpoint`` (a note says so)."""
    import logging

    path = run / NAME
    if not path.is_file():
        return None
    try:
        record = read_json(path)
        temps = record["temperatures"]
        found = [float(temps[name]) for name in outputs]
        fitted_for = record.get("checkpoint")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ConfigError(f"{path}: not a readable calibration ({type(e).__name__})") from None
    if record.get("applied") is False:  # they did not help held-out persons: the run predicts uncalibrated
        return None
    if checkpoint is not None and isinstance(fitted_for, dict) and fitted_for != checkpoint_id(checkpoint):
        logging.getLogger("mask_cls").info("%s: fitted for %s, not %s: predicted uncalibrated", path,
                                           fitted_for.get("name"), Path(checkpoint).name)
        return None
    if not all(LIMITS[0] <= t <= LIMITS[1] for t in found):
        raise ConfigError(f"{path}: temperatures {found} outside {LIMITS[0]}..{LIMITS[1]}")
    return found


def validation_pass(module: Any, paths: Sequence[str], tta: Sequence[str],
                    predict_kw: dict[str, Any]) -> tuple[list[torch.Tensor], np.ndarray, np.ndarray]:
    """One prediction of the validation images for the report and the temperature: the per-output
    (views, N', classes) logits, the readable rows, and the (N, 18) TTA-averaged probabilities of
    the model as trained (NaN where unreadable), the numbers ``predict_paths`` gives."""
    from mask_cls.inference.predict import predict_logits
    from mask_cls.labels import NUM_CLASSES

    logits, rows = predict_logits(module, list(paths), tta, progress=True, **predict_kw)  # minutes on a CPU: said
    out = np.full((len(paths), NUM_CLASSES), np.nan, np.float32)
    with torch.no_grad():
        out[rows] = probs(module.net.head, logits, [1.0] * len(logits)).numpy()
    return logits, rows, out


def calibrate_run(module: Any, val: Any, logits: list[torch.Tensor], rows: np.ndarray, out: Path,
                  fitted_on: str, checkpoint: str | Path | None = None, loggers: Sequence = (),
                  step: int = 0) -> dict[str, Any]:
    """Fit the temperatures of ``module`` on the validation rows ``val`` (their ``logits`` and
    readable ``rows`` from :func:`validation_pass`), set them on it, write ``calibration.json``,
    ``report/predictions_calibrated.csv`` and ``report/reliability_calibrated.png``."""
    from mask_cls.evaluation.calibration import reliability
    from mask_cls.evaluation.figures import reliability_figure
    from mask_cls.evaluation.report import log_figures, write_predictions

    head = module.net.head
    val = val.iloc[rows]  # the readable ones (on_bad_image=skip)
    y = [int(v) for v in val["label"]]
    ones = [1.0] * len(logits)
    temps = fit(head, logits, y)
    with torch.no_grad():
        before, after = probs(head, logits, ones).numpy(), probs(head, logits, temps).numpy()
    check = cross_fitted(head, logits, y, list(val["person"]))
    record = write(out, temps, head.outputs, before, after, y, fitted_on, checkpoint, check)
    _say(record, temps)
    if not record["applied"]:
        return record
    module.net.set_temperatures(temps)
    (out / "report").mkdir(exist_ok=True)
    write_predictions(list(val["image"]), y, after, out / "report" / CALIBRATED)
    figure = reliability_figure(reliability(np.asarray(y), after), record["ece_after"],
                                out / "report" / "reliability_calibrated.png",
                                f"calibrated (T = {', '.join(f'{t:.2f}' for t in temps)})")
    log_figures(loggers, "calibrated", [figure], step)  # every report figure reaches the loggers that take images
    return record


def _say(record: dict[str, Any], temps: Sequence[float]) -> None:
    """One line: the temperatures, and whether the run applies them (and why)."""
    import logging

    shown = ", ".join(f"{t:.3f}" for t in temps)
    check = record["cross_fitted"]
    held = f"held-out NLL {check['nll_before']:.4f} -> {check['nll_after']:.4f}" if check else \
        f"too few validation persons for a held-out check (< {2 * MIN_HALF})"
    verdict = "applied to the report, submission and export" if record["applied"] else \
        "NOT applied (they did not lower the NLL of persons they were not fitted on): predictions stay as trained"
    logging.getLogger("mask_cls").info("calibration: T = %s, %s; %s (ECE on the fitting persons %.4f -> %.4f)",
                                       shown, verdict, held, record["ece_before"], record["ece_after"])
