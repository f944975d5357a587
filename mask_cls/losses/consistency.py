"""UDA's consistency loss (Xie et al., "Unsupervised Data Augmentation").

    mean over the whole unlabeled batch of  1[max p_weak > beta] * KL(sharpen(p_weak, tau) || p_strong)

The target (weak view) is under stop-gradient; its confidence is read before sharpening;
images below ``beta`` count as zeros in the mean (the denominator is the full batch, not the
confident part). Inputs are log-probabilities, so any head works: for the multi-task head the
18-class joint, whose KL is the sum of the sub-task KLs.
"""

from __future__ import annotations

import torch


def sharpen(logp: torch.Tensor, tau: float) -> torch.Tensor:
    """log of p^(1/tau) / sum p^(1/tau): tau < 1 makes the distribution peakier."""
    return (logp / tau).log_softmax(1)


def uda_consistency(weak_logp: torch.Tensor, strong_logp: torch.Tensor, beta: float,
                    tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, mask): the loss (a scalar) and which images were confident enough (N,)."""
    weak_logp = weak_logp.detach().float()
    mask = (weak_logp.exp().amax(1) > beta).float()
    target = sharpen(weak_logp, tau)
    kl = (target.exp() * (target - strong_logp.float())).sum(1)
    return (mask * kl).mean(), mask
