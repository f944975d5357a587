"""Knowledge distillation (``ssl=distill``, set by ``task=distill``): the student learns the
teacher's soft targets on every training image (labeled and unlabeled) and the labels where
there are labels:

    loss = alpha * T^2 * KL(p_T || q_T)  [all rows]  +  (1 - alpha) * loss(labels)  [labeled rows]

Rows without a label (label -1) are the unlabeled images; the teacher's probabilities arrive
with the batch (``Labeled.soft``), computed once before training (``teacher_probs.csv``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from mask_cls.errors import ConfigError
from mask_cls.losses.distillation import distillation_kl

if TYPE_CHECKING:
    from mask_cls.models.preprocessor import Labeled
    from mask_cls.module import MaskClassifier


@dataclass(frozen=True)
class Distill:
    temperature: float = 2.0  # T of both distributions in the KL term
    alpha: float = 0.5        # share of the KL term; 1 - alpha: the loss on the labels

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> Distill:
        d = cls(temperature=float(cfg.get("temperature", 2.0)), alpha=float(cfg.get("alpha", 0.5)))
        if not 0 < d.temperature <= 100:
            raise ConfigError(f"ssl.temperature={cfg.get('temperature')!r}: must be in (0, 100]")
        if not 0 <= d.alpha <= 1:
            raise ConfigError(f"ssl.alpha={cfg.get('alpha')!r}: must be in [0, 1]")
        return d


class DistillObjective:
    """One backbone pass; the KL term on the plain logits (a margin head's margin never meets a
    soft target), the configured loss on the labeled rows (with the margin on their labels)."""

    def __init__(self, distill: Distill):
        self.distill = distill

    def __call__(self, m: MaskClassifier, b: Labeled) -> torch.Tensor:
        if b.soft is None:
            raise ConfigError("ssl=distill: the batch has no soft targets (data.soft_targets, set by task=distill)")
        if b.partner is not None:
            raise ConfigError("ssl=distill with a batch augmentation (CutMix): not supported; use augment=light")
        t, alpha = self.distill.temperature, self.distill.alpha
        f = m.net.features(b.x)
        head = m.net.head
        plain = m.net.head_outputs(f)
        kd = distillation_kl(head.log_probs(tuple(o / t for o in plain)), b.soft, t, b.weight)
        labeled = b.y >= 0
        sup = kd.new_zeros(())
        if alpha < 1 and bool(labeled.any()):
            y = b.y[labeled]
            outs = m.net.head_outputs(f[labeled], y) if head.uses_target else tuple(o[labeled] for o in plain)
            sup = m.loss(outs, y, b.weight[labeled] if b.weight is not None else None)
        if m._trainer is not None:
            m.log_dict({"distill/kl": kd.detach(), "distill/labeled_loss": sup.detach(),
                        "distill/labeled_share": labeled.float().mean()}, on_step=True, on_epoch=False,
                       batch_size=len(b.y))
        return alpha * kd + (1 - alpha) * sup
