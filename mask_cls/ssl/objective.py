"""What a training step minimises: the labeled loss, UDA's labeled + consistency objective, or
distillation's soft targets + labels (``ssl/distill.py``).

The module's step is ``loss = self.objective(self, batch)``; the objective is chosen once from
the config (``ssl=none|uda``), so the step never branches on the batch's type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import torch

from mask_cls import labels as L
from mask_cls.errors import ConfigError
from mask_cls.losses.consistency import uda_consistency
from mask_cls.ssl.distill import Distill, DistillObjective
from mask_cls.ssl.uda import UDA

if TYPE_CHECKING:
    from mask_cls.models.preprocessor import Labeled
    from mask_cls.module import MaskClassifier


class LabeledOutputs(NamedTuple):
    """Logits of labeled features: for their labels (a margin head's margin on them), for the
    CutMix partner's labels (None without CutMix or a margin), and without any margin."""

    target: tuple
    partner: tuple | None
    plain: tuple


def labeled_outputs(m: MaskClassifier, f: torch.Tensor, y: torch.Tensor, partner) -> LabeledOutputs:
    """With a head that takes no target (linear, multitask) all three are the same logits."""
    outs = m.net.head_outputs(f, y)
    if not m.net.head.uses_target:
        return LabeledOutputs(outs, None, outs)
    outs_partner = m.net.head_outputs(f, y[partner]) if partner is not None else None
    return LabeledOutputs(outs, outs_partner, m.net.head_outputs(f))


class Supervised:
    """The labeled loss (CutMix's two labels weighted by ``lam``)."""

    def __call__(self, m: MaskClassifier, batch: Labeled) -> torch.Tensor:
        outs = labeled_outputs(m, m.net.features(batch.x), batch.y, batch.partner)
        return m.supervised_loss(outs.target, batch, outs_partner=outs.partner)


class UDAObjective:
    """Supervised loss (TSA) + lambda(t) * consistency of the strong view with the sharpened weak
    one; labeled, weak and strong images in one backbone pass (batch-norm statistics over all)."""

    def __init__(self, uda: UDA):
        self.uda = uda

    def outputs(self, m: MaskClassifier, labeled: Labeled, weak: torch.Tensor,
                strong: torch.Tensor) -> tuple[LabeledOutputs, tuple]:
        """One pass over every image; only labeled rows see a target, so an unlabeled image
        never meets a margin."""
        f = m.net.features(torch.cat([labeled.x, weak, strong]))
        n = len(labeled.y)
        return labeled_outputs(m, f[:n], labeled.y, labeled.partner), m.net.head_outputs(f[n:])

    def tsa_masks(self, m: MaskClassifier, outs, y, t: float) -> tuple[tuple[torch.Tensor | None, ...], dict]:
        """Per output, 1 for labeled examples kept by TSA (true-class probability <= threshold)."""
        head = m.net.head
        masks: list[torch.Tensor | None] = []
        logs: dict[str, Any] = {}
        for name, o in zip(head.outputs, outs):
            thr = self.uda.threshold(t, o.shape[1])
            if thr is None:
                masks.append(None)
                continue
            p_true = o.detach().float().softmax(1).gather(1, L.target(name, y)[:, None]).squeeze(1)
            keep = (p_true <= thr).float()
            masks.append(keep)
            suffix = "" if len(outs) == 1 else f"_{name}"
            logs |= {f"ssl/tsa_threshold{suffix}": thr, f"ssl/labeled_kept{suffix}": keep.mean()}
        return tuple(masks), logs

    def __call__(self, m: MaskClassifier, batch: dict[str, Any]) -> torch.Tensor:
        labeled, unlabeled = batch["labeled"], batch["unlabeled"]
        weak, strong = unlabeled["weak"], unlabeled["strong"]
        y = labeled.y
        outs, outs_u = self.outputs(m, labeled, weak, strong)
        t = m.progress()
        keep, logs = self.tsa_masks(m, outs.plain, y, t)  # the true-class probability without the margin
        # (with CutMix, the TSA mask of an image's own label applies to both its terms)
        sup = m.supervised_loss(outs.target, labeled, keep, outs.partner)
        logp = m.net.head.log_probs(outs_u)
        cons, confident = uda_consistency(logp[: len(weak)], logp[len(weak):], self.uda.beta, self.uda.tau)
        max_epochs = m._trainer.max_epochs if m._trainer else 0
        weight = self.uda.weight(t, m.current_epoch, max_epochs or 0)
        # tensors, not floats: no device sync per step (Lightning reads them when it logs)
        logs |= {"ssl/sup_loss": sup.detach(), "ssl/consistency": cons.detach(),
                 "ssl/above_beta": confident.mean(), "ssl/weight": weight}
        if m._trainer is not None:
            m.log_dict(logs, on_step=True, on_epoch=False, batch_size=len(y))
        return sup + weight * cons


Objective = Supervised | UDAObjective | DistillObjective


def _uda(cfg: Mapping[str, Any]) -> UDAObjective:
    uda = UDA.from_config(cfg)
    assert uda is not None  # (ssl.name is uda here)
    return UDAObjective(uda)


#: what each ``ssl.name`` trains with
OBJECTIVES: dict[str, Callable[[Mapping[str, Any]], Objective]] = {
    "none": lambda cfg: Supervised(),
    "uda": _uda,
    "distill": lambda cfg: DistillObjective(Distill.from_config(cfg)),
}


def objective_for(ssl: Mapping[str, Any] | None) -> Objective:
    """The objective of ``ssl.name`` (its settings checked here, before any training)."""
    name = str((ssl or {}).get("name", "none"))
    if name not in OBJECTIVES:
        raise ConfigError(f"ssl.name={name!r}: choose {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name](ssl or {})
