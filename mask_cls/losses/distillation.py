"""Knowledge distillation's soft-target term (Hinton et al. 2015): T^2 * KL(p_T || q_T).

p_T: the teacher's 18-class probabilities at temperature T, ``p^(1/T)`` renormalised (for one
softmax model exactly ``softmax(z / T)``; for an ensemble, the average tempered as a whole);
q_T: the student's, its logits divided by T. The T^2 keeps the gradient's scale as T changes.
"""

from __future__ import annotations

import torch


def tempered(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """log p_T: the teacher's probabilities at temperature T (log-space, normalised)."""
    return (probs.float().clamp_min(1e-12).log() / temperature).log_softmax(1)


def distillation_kl(student_log_probs_t: torch.Tensor, teacher_probs: torch.Tensor, temperature: float,
                    weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over the batch (weighted by ``weight`` where given) of T^2 * KL(p_T || q_T), with
    ``student_log_probs_t`` = log q_T (N, 18) and ``teacher_probs`` = p (N, 18) at T = 1."""
    log_p = tempered(teacher_probs, temperature)
    kl = (log_p.exp() * (log_p - student_log_probs_t.float())).sum(1) * temperature**2
    if weight is None:
        return kl.mean()
    w = weight.float()
    return (kl * w).sum() / w.sum().clamp_min(1e-12)
