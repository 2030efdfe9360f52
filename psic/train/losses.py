"""Training objectives: rate, distortion, and the attack on the target VLP (naive and UAEO).

Conventions: image and text features are L2-normalized rows; row i of the image
features and row i of the text features form a matched pair (a protected image and its
own caption). All masks are boolean, every term over a subset is guarded against an
empty subset, and nothing here can divide by a quantity that may change sign.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

CLIP_INIT_TEMPERATURE = 0.07  # the InfoNCE temperature s of Eq. 9 (CLIP's initial value)
EVIDENCE_TAU = 0.1  # the outer evidence temperature of the reference code


def bits_per_pixel_per_image(likelihoods: dict[str, Tensor], pixels_per_image: int) -> Tensor:
    """[B] rate of each image, so that each can be weighed by its own level's lambda."""
    bits = torch.stack([torch.log2(v.float()).flatten(1).sum(dim=1) for v in likelihoods.values()]).sum(dim=0)
    return bits / (-pixels_per_image)


def psnr(mse: Tensor) -> float:
    return float("inf") if mse.item() <= 0 else 10 * math.log10(1.0 / mse.item())


@dataclass(frozen=True)
class EvidenceSplit:
    """The in-batch split of Eq. 5-8: which pairs the VLP already mismatches, and the target caption of each."""

    clean: Tensor  # [K] bool: the VLP retrieves the right caption (highest belief on the diagonal)
    noisy: Tensor  # [K] bool: the complement
    target: Tensor  # [K] long: the caption of least evidence (highest uncertainty), never the own one


def bidirectional_belief(image: Tensor, text: Tensor, s: float = CLIP_INIT_TEMPERATURE, tau: float = EVIDENCE_TAU) -> Tensor:
    """u_ij of Eq. 7 from the evidence of Eq. 5 in both directions (Eq. 6), with Eq. 7's +1.

    Row i of the image-to-text evidence is e(x_i, t_j) over captions j; the text-to-image
    evidence vector of the same pair index is e(x_j, t_i) over images j (caption i looking
    for its image). Eq. 6 adds the two, so e^b = E + E^T: a caption that points at another
    image counts as much as an image that points at another caption.
    """
    evidence = torch.exp(torch.tanh((image @ text.T) / s) / tau)  # E_ij = e(x_i, t_j), Eq. 5
    bidirectional = evidence + evidence.T  # Eq. 6
    return bidirectional / (bidirectional + 1).sum(dim=1, keepdim=True)


@torch.no_grad()
def evidence_split(clean_image: Tensor, text: Tensor) -> EvidenceSplit:
    """Split by the VLP's view of the *original* images, as the paper does."""
    belief = bidirectional_belief(clean_image, text)
    own = torch.arange(len(belief), device=belief.device)
    clean = belief.argmax(dim=1) == own
    masked = belief.clone()
    masked[own, own] = float("inf")  # the target must be another caption
    return EvidenceSplit(clean=clean, noisy=~clean, target=masked.argmin(dim=1))


def _weighted_mean(values: Tensor, weights: Tensor | None) -> Tensor:
    """Mean of per-row terms, each scaled by its row's weight (a plain mean without weights)."""
    return values.mean() if weights is None else (values * weights).mean()


def naive_cosine(protected: Tensor, text: Tensor, mask: Tensor, weights: Tensor | None = None) -> Tensor:
    """Mean cos(protected_i, own caption_i) over ``mask``: the paper's baseline attack (minimized).

    ``weights`` (one per row of ``protected``) scale each pair's share: the result is then
    mean(w_i (1 + cos_i)) - 1, so that 1 + it stays >= 0 as :func:`combine_adaptive` needs.
    """
    if not bool(mask.any()):
        return protected.sum() * 0.0
    shifted = 1.0 + (protected[mask] * text[mask]).sum(dim=1)
    return _weighted_mean(shifted, None if weights is None else weights[mask]) - 1.0


def targeted_infonce(
    protected: Tensor, text: Tensor, split: EvidenceSplit, mask: Tensor, weights: Tensor | None = None
) -> Tensor:
    """Eq. 9 in both directions for the rows in ``mask``: pull protected image n toward caption t_n.

    Keys are the same subset's captions (i2t) and protected images (t2i), so labels and
    keys are aligned: the reference code's i2t keys were the whole mixed batch's texts.
    """
    if not bool(mask.any()):
        return protected.sum() * 0.0
    rows = mask.nonzero(as_tuple=True)[0]
    targets = split.target[rows]
    scale = 1.0 / CLIP_INIT_TEMPERATURE
    i2t = F.cross_entropy(scale * protected[rows] @ text.T, targets, reduction="none")
    t2i = F.cross_entropy(scale * text[targets] @ protected.T, rows, reduction="none")
    return _weighted_mean((i2t + t2i) / 2, None if weights is None else weights[rows])


@dataclass(frozen=True)
class AttackTerms:
    cosine: Tensor  # naive term in [-1, 1]
    infonce: Tensor  # UAEO term >= 0
    split: EvidenceSplit


def attack_terms(
    protected: Tensor, clean_image: Tensor, text: Tensor, objective: str = "uaeo", weights: Tensor | None = None
) -> AttackTerms:
    """``uaeo``: cosine on the clean pairs, targeted InfoNCE on the noisy ones (the paper's
    code). ``naive``: cosine on every pair (the paper's ablation baseline). ``weights``: one
    per pair, how much its attack counts (a gain network's per-level attack weight)."""
    split = evidence_split(clean_image, text)
    if objective == "naive":
        everyone = torch.ones_like(split.clean)
        return AttackTerms(naive_cosine(protected, text, everyone, weights), protected.sum() * 0.0, split)
    if objective != "uaeo":
        raise ValueError(f"unknown attack objective {objective!r}")
    return AttackTerms(
        naive_cosine(protected, text, split.clean, weights),
        targeted_infonce(protected, text, split, split.noisy, weights),
        split,
    )


def combine_fixed(terms: AttackTerms, cosine_weight: float = 10.0) -> Tensor:
    """Stage 1 of the reference: a fixed weighting of the two terms."""
    return cosine_weight * terms.cosine + terms.infonce


def combine_adaptive(terms: AttackTerms, eps: float = 1e-6) -> Tensor:
    """Stage 2: give more weight to the smaller objective, stably.

    The reference's harmonic-mean weights use the raw cosine, which changes sign, so the
    weights can go negative or explode. Here the cosine is shifted to 1 + cos in [0, 2]
    (same gradient), both objectives are non-negative, and the weights are detached:
    w_c = n / (c + n), w_n = c / (c + n), each in [0, 1] and summing to 1.
    """
    c = 1.0 + terms.cosine
    n = terms.infonce
    with torch.no_grad():
        total = c + n + eps
        w_c = (n + eps / 2) / total
        w_n = (c + eps / 2) / total
    return w_c * c + w_n * n


@torch.no_grad()
def in_batch_attack_success(protected: Tensor, clean_image: Tensor, text: Tensor) -> float:
    """Share (%) of pairs retrieved right (i2t, R@1) from the original image but wrong from the protected one."""
    own = torch.arange(len(text), device=text.device)
    right_before = (clean_image @ text.T).argmax(dim=1) == own
    right_after = (protected @ text.T).argmax(dim=1) == own
    if not bool(right_before.any()):
        return float("nan")
    return 100.0 * (right_before & ~right_after).sum().item() / right_before.sum().item()
