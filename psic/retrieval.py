"""Image-text retrieval metrics (R@K both directions) and the attack success rate."""

from __future__ import annotations

import math

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


def attack_counts(reference_hits: Tensor, attacked_hits: Tensor) -> tuple[int, int]:
    """(fooled, right) for an attack success rate: of the pairs the reference gets right at R@1, those the attack breaks."""
    right = reference_hits.bool()
    return int((right & ~attacked_hits.bool()).sum().item()), int(right.sum().item())


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval (%, 95 % at z=1.96) of a rate: an ASR rests on a few dozen pairs with a weak target."""
    if trials <= 0:
        return float("nan"), float("nan")
    rate = successes / trials
    centre = rate + z * z / (2 * trials)
    spread = z * math.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials))
    scale = 1 + z * z / trials
    return max(0.0, 100.0 * (centre - spread) / scale), min(100.0, 100.0 * (centre + spread) / scale)
