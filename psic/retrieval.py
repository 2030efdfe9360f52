"""Image-text retrieval metrics (R@K both directions) and the attack success rate."""

from __future__ import annotations

import torch
from torch import Tensor


def _ranks_i2t(image_features: Tensor, text_features: Tensor, owner: Tensor) -> Tensor:
    """For each image, the best rank of any of its own captions (0 = top-1)."""
    similarity = image_features @ text_features.T
    own = owner[None, :] == torch.arange(len(image_features))[:, None]
    best_own = similarity.masked_fill(~own, float("-inf")).amax(dim=1, keepdim=True)
    return (similarity > best_own).sum(dim=1)


def _ranks_t2i(image_features: Tensor, text_features: Tensor, owner: Tensor) -> Tensor:
    similarity = text_features @ image_features.T
    own_score = similarity.gather(1, owner[:, None])
    return (similarity > own_score).sum(dim=1)


def retrieval_hits(image_features: Tensor, text_features: Tensor, owner: Tensor, k: int = 1) -> tuple[Tensor, Tensor]:
    """Boolean hit vectors (i2t per image, t2i per caption) at R@k; features L2-normalized."""
    return (
        _ranks_i2t(image_features, text_features, owner) < k,
        _ranks_t2i(image_features, text_features, owner) < k,
    )


def recall_at(image_features: Tensor, text_features: Tensor, owner: Tensor, ks=(1, 5, 10)) -> dict[str, float]:
    r_i2t = _ranks_i2t(image_features, text_features, owner)
    r_t2i = _ranks_t2i(image_features, text_features, owner)
    metrics = {}
    for k in ks:
        metrics[f"i2t_R@{k}"] = 100.0 * (r_i2t < k).float().mean().item()
        metrics[f"t2i_R@{k}"] = 100.0 * (r_t2i < k).float().mean().item()
    return metrics


def attack_success_rate(reference_hits: Tensor, attacked_hits: Tensor) -> float:
    """Share (%) of the pairs the reference gets right at R@1 that the attacked images get wrong."""
    right = reference_hits.bool()
    if not bool(right.any()):
        return float("nan")
    return 100.0 * (right & ~attacked_hits.bool()).sum().item() / right.sum().item()
