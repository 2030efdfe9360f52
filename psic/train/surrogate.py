"""Train a CLIP-style surrogate target model on a captioned image set (e.g. Flickr8k).

The MiniLM text transformer is locked, so its pooled caption features are computed once;
the image tower (from scratch), the text projection and the temperature are trained with
the symmetric CLIP (InfoNCE) loss. Validation images are never trained on.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save

from psic import datasets
from psic.retrieval import recall_at
from psic.train.feature_cache import cached, content_key
from psic.vlp import surrogate
from psic.vlp.preprocess import preprocess

STORE_SIZE = 128  # images are decoded once at this size; training crops image_size from it


@dataclass
class SurrogateSettings:
    name: str = "psic-surrogate"
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup_steps: int = 100
    seed: int = 0
    val_count: int = 1000


@torch.no_grad()
def pooled_caption_features(model, captions: list[str], chunk: int = 256) -> torch.Tensor:
    """The locked MiniLM's mean-pooled outputs, [n, 384]: the input of the trained projection.

    Captions run in length order so that each chunk carries little padding.
    """
    tok = surrogate.tokenizer()
    text = model.text
    order = sorted(range(len(captions)), key=lambda i: len(captions[i]))
    pooled = torch.empty(len(captions), text.transformer.config.hidden_size)
    for start in range(0, len(order), chunk):
        rows = order[start : start + chunk]
        ids = tok([captions[i] for i in rows])
        mask = (ids != text.config.pad_token_id).long()
        hidden = text.transformer(input_ids=ids, attention_mask=mask)
        pooled[rows] = text.pooler(hidden, mask)
    return pooled


def _augment(
    batch: np.ndarray, size: int, rng: np.random.Generator, crop_area: tuple[float, float] | None = None
) -> torch.Tensor:
    """Random crops and horizontal flips of uint8 images -> float [B, 3, size, size] in [0, 1].

    Without ``crop_area`` a crop is ``size`` pixels of the stored image; with it, a crop covers a
    random share of the image's area in that range (aspect 3:4 to 4:3) and is resized to ``size``.
    """
    images = torch.from_numpy(batch).permute(0, 3, 1, 2)
    crops = torch.empty(len(batch), 3, size, size)
    for i, image in enumerate(images):
        top, left, height, width = _crop_box(image.shape[1], size, rng, crop_area)
        crop = image[:, top : top + height, left : left + width].float().div_(255.0)
        if (height, width) != (size, size):
            crop = F.interpolate(crop[None], size=(size, size), mode="bicubic", antialias=True, align_corners=False)[0]
        crops[i] = crop.flip(-1) if rng.random() < 0.5 else crop
    return crops.clamp_(0.0, 1.0)


def _crop_box(
    full: int, size: int, rng: np.random.Generator, crop_area: tuple[float, float] | None
) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a training crop in a full x full image."""
    if crop_area is None:
        height = width = size
    else:
        area = full * full * rng.uniform(*crop_area)
        aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        height = min(full, round(math.sqrt(area / aspect)))
        width = min(full, round(math.sqrt(area * aspect)))
    top, left = rng.integers(0, full - height + 1), rng.integers(0, full - width + 1)
    return int(top), int(left), height, width


def _lr_at(step: int, total: int, settings: SurrogateSettings) -> float:
    if step < settings.warmup_steps:
        return settings.lr * (step + 1) / settings.warmup_steps
    progress = (step - settings.warmup_steps) / max(1, total - settings.warmup_steps)
    return settings.lr * 0.5 * (1 + math.cos(math.pi * progress))


def _optimizer(model, settings: SurrogateSettings) -> torch.optim.Optimizer:
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = [p for n, p in trainable if p.ndim >= 2 and "logit_scale" not in n]
    no_decay = [p for n, p in trainable if not (p.ndim >= 2 and "logit_scale" not in n)]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings.lr,
    )


@torch.no_grad()
def evaluate(model, images: np.ndarray, pooled: torch.Tensor, owner: torch.Tensor, image_size: int) -> dict:
    """R@1/5/10 of the surrogate on held-out images (given as [n, H, W, 3] uint8)."""
    model.eval()
    mean, std = surrogate.NORMALIZATION
    feats = []
    for start in range(0, len(images), 256):
        x = torch.from_numpy(images[start : start + 256]).permute(0, 3, 1, 2).float().div_(255.0)
        feats.append(F.normalize(model.encode_image(preprocess(x, image_size, mean, std)), dim=-1))
    text = F.normalize(model.text.proj(pooled), dim=-1)
    model.train()
    return recall_at(torch.cat(feats), text, owner)


def _cached_pooled(model, train_captions, val_captions, cache: Path | None):
    """MiniLM features of every caption; the locked tower makes them reusable across runs."""
    key = content_key("minilm-pooled", *train_captions, "|", *val_captions)
    return cached(
        cache,
        key,
        lambda: (pooled_caption_features(model, train_captions), pooled_caption_features(model, val_captions)),
    )


def train_surrogate(
    data_root: str | Path, settings: SurrogateSettings, log=print, pooled_cache: Path | None = None
) -> tuple[bytes, dict]:
    """Train; returns the weights as a safetensors file image and the metrics report."""
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    config = surrogate.surrogate_config(settings.name)
    train_set, val_set = datasets.split(datasets.read_captioned(data_root), settings.val_count)
    # channels_last: ~20 % faster convolutions on the CPU
    model = surrogate.build_surrogate(settings.name).to(memory_format=torch.channels_last)

    t0 = time.time()
    train_images = datasets.load_square([train_set.image_path(i) for i in range(len(train_set.names))], STORE_SIZE)
    val_images = datasets.load_square([val_set.image_path(i) for i in range(len(val_set.names))], 224)
    train_captions = [c for caps in train_set.captions for c in caps]
    val_captions = [c for caps in val_set.captions for c in caps]
    train_pooled_flat, val_pooled = _cached_pooled(model, train_captions, val_captions, pooled_cache)
    bounds = np.cumsum([0] + [len(caps) for caps in train_set.captions])
    train_pooled = [train_pooled_flat[bounds[i] : bounds[i + 1]] for i in range(len(train_set.captions))]
    val_owner = torch.tensor([i for i, caps in enumerate(val_set.captions) for _ in caps])
    log(f"data ready in {time.time() - t0:.0f}s: {len(train_images)} train / {len(val_images)} val images")

    optimizer = _optimizer(model, settings)
    steps_per_epoch = len(train_images) // settings.batch_size
    total = steps_per_epoch * settings.epochs
    mean, std = surrogate.NORMALIZATION
    step = 0
    model.train()
    for epoch in range(settings.epochs):
        order = rng.permutation(len(train_images))
        for b in range(steps_per_epoch):
            idx = order[b * settings.batch_size : (b + 1) * settings.batch_size]
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(step, total, settings)
            crops = _augment(train_images[idx], config.image_size, rng, config.crop_area)
            x = preprocess(crops, config.image_size, mean, std).contiguous(memory_format=torch.channels_last)
            pooled = torch.stack([train_pooled[i][rng.integers(len(train_pooled[i]))] for i in idx])
            image_features = F.normalize(model.encode_image(x), dim=-1)
            text_features = F.normalize(model.text.proj(pooled), dim=-1)
            logits = model.logit_scale.exp().clamp(max=100) * image_features @ text_features.T
            labels = torch.arange(len(idx))
            loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if step % 10 == 0:
                log(f"epoch {epoch + 1} step {step}/{total} loss {loss.item():.3f} ({time.time() - t0:.0f}s)")
        metrics = evaluate(model, val_images, val_pooled, val_owner, config.image_size)
        log(f"epoch {epoch + 1} validation " + " ".join(f"{k} {v:.1f}" for k, v in metrics.items()))

    state = {k: v.detach().half().contiguous() for k, v in surrogate.trained_state(model).items()}
    report = {
        "name": settings.name,
        "settings": asdict(settings),
        "train_images": len(train_images),
        "val_images": len(val_images),
        "val_captions": len(val_captions),
        "wall_seconds": round(time.time() - t0),
        "threads": torch.get_num_threads(),
        "device": "cpu",
        "validation": metrics,
    }
    return save(state, metadata={"psic.surrogate": settings.name}), report
