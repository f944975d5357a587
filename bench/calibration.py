"""Does temperature scaling make a trained run's confidences honest on real faces? For each
finished train run: its best checkpoint predicts its own validation persons (from the run's
``report/predictions.csv``) and the eval images with the run's TTA; one temperature is fitted on
the validation logits (as ``task=train`` now does), then on the eval answer key (never used for
the fit), on the confirmation half of the eval persons (bench/eval_split.py): ECE and NLL before
and after, and for pseudo-labels at a threshold, the precision ``task=pseudo`` would estimate
on validation against the precision the kept eval images really have.

    python bench/calibration.py RUN [RUN ...] --root REALFACES --answers KEY --split SPLIT.csv
        [--threshold 0.9] [--results FILE] [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, parser  # noqa: E402

from mask_cls.checkpoint_io import load_checkpoint  # noqa: E402
from mask_cls.evaluation.calibration import expected_calibration_error  # noqa: E402
from mask_cls.evaluation.temperature import fit, nll, probs  # noqa: E402
from mask_cls.inference.predict import predict_logits  # noqa: E402
from mask_cls.inference.runs import best_checkpoint  # noqa: E402


def measure(run: Path, root: Path, answers: Path, split: pd.DataFrame, threshold: float) -> dict:
    module = load_checkpoint(str(best_checkpoint(run))).eval()
    head = module.net.head
    val = pd.read_csv(run / "report" / "predictions.csv")
    tta = ["none", "hflip"]
    v_logits, _ = predict_logits(module, list(val.image), tta, num_workers=2)
    y_val = val.label.to_numpy()
    temps = fit(head, v_logits, list(y_val))
    info = pd.read_csv(root / "eval" / "info.csv")
    key = pd.read_csv(answers).set_index("ImageID")["ans"]
    half = split.set_index("ImageID")["half"]
    conf_rows = (half.loc[info.ImageID] == "confirmation").to_numpy()
    e_logits, rows = predict_logits(module, [str(root / "eval" / "images" / i) for i in info.ImageID], tta,
                                    num_workers=2)
    assert len(rows) == len(info)
    y_eval = key.loc[info.ImageID].to_numpy()[conf_rows]
    out = {"run": f"{run.parent.name}/{run.name}",
           "temperature": temps[0] if len(temps) == 1 else temps, "val_images": len(val),
           "eval_images": int(conf_rows.sum())}
    for tag, t in (("before", [1.0] * len(temps)), ("after", temps)):
        pv = probs(head, v_logits, t).numpy()
        pe = probs(head, e_logits, t).numpy()[conf_rows]
        kept_v, kept_e = pv.max(1) >= threshold, pe.max(1) >= threshold
        out |= {f"ece_{tag}": expected_calibration_error(y_eval, pe), f"nll_{tag}": nll(pe, y_eval),
                f"acc_{tag}": float((pe.argmax(1) == y_eval).mean()),
                f"kept_{tag}": int(kept_e.sum()),
                f"est_precision_{tag}": float((pv.argmax(1) == y_val)[kept_v].mean()) if kept_v.any() else float("nan"),
                f"true_precision_{tag}": float((pe.argmax(1) == y_eval)[kept_e].mean()) if kept_e.any() else float("nan")}
    return out


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("runs", type=Path, nargs="*")
    p.add_argument("--root", type=Path)
    p.add_argument("--answers", type=Path)
    p.add_argument("--split", type=Path)
    p.add_argument("--threshold", type=float, default=0.9)
    p.add_argument("--results", type=Path, help="append the rows to this CSV")
    args = p.parse_args()
    if args.quick:
        print("calibration --quick: needs finished runs; nothing to measure. 1.00x")
        print(f"machine: {machine()}")
        return
    split = pd.read_csv(args.split)
    rows = [measure(r, args.root, args.answers, split, args.threshold) for r in args.runs]
    table = pd.DataFrame(rows)
    print(f"\ntemperature scaling on real faces (fitted on each run's validation persons; scored on the "
          f"confirmation half of the eval key; pseudo threshold {args.threshold}); machine: {machine()}")
    cols = ["run", "temperature", "ece_before", "ece_after", "nll_before", "nll_after", "acc_before", "acc_after",
            "kept_before", "est_precision_before", "true_precision_before", "kept_after", "est_precision_after",
            "true_precision_after"]
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if args.results:
        table.to_csv(args.results, mode="a", header=not args.results.exists(), index=False)


if __name__ == "__main__":
    main()
