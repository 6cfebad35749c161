"""Inception Score (Salimans et al. 2016): exp E_x KL(p(y|x) ‖ p(y)), mean ± std over splits.

Same conventions as torch-fidelity's `isc_features_to_metric`: float64, a seeded shuffle before
splitting (our synthetic sets are written class by class), split i = [i·N/splits, (i+1)·N/splits),
population std.
"""

import numpy as np
import torch

TORCH_FIDELITY_SHUFFLE_SEED = 2020


def inception_score(logits_NK: torch.Tensor, splits: int = 10, shuffle_seed: int = TORCH_FIDELITY_SHUFFLE_SEED):
    """(mean, std) of the Inception Score of classifier logits."""
    num = logits_NK.shape[0]
    if num < splits:
        raise ValueError(f"Inception Score needs at least {splits} samples for {splits} splits (got {num})")
    logits = logits_NK[np.random.RandomState(shuffle_seed).permutation(num)].double()
    p, log_p = logits.softmax(dim=1), logits.log_softmax(dim=1)
    scores = []
    for i in range(splits):
        chunk = slice(i * num // splits, (i + 1) * num // splits)
        log_marginal = p[chunk].mean(dim=0, keepdim=True).log()
        scores.append((p[chunk] * (log_p[chunk] - log_marginal)).sum(dim=1).mean().exp().item())
    return float(np.mean(scores)), float(np.std(scores))
