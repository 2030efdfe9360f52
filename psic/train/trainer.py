"""The two-stage PSIC training loop.

Stage 1 trains every parameter (or those ``stage1_trains`` names) on rate, distortion of both
modes and the attack on the target VLP. Stage 2 freezes the encoder and the entropy models (so the rate is fixed and
old bitstreams stay valid) and trains the decoder, including the CLTG's shared MLP, which
the paper's text leaves trainable (the reference code froze it by a name-filter accident),
with a larger attack weight and the adaptive balance.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from psic.codec.network import DOWNSAMPLING, QUALITY_LAMBDAS, ConditionalHyperprior
from psic.datasets import image_folder, read_captioned, split
from psic.errors import PsicWarning
from psic.train import allocator, distributed, losses, robustness
from psic.train.batches import Batch, ImagePool, concat
from psic.train.checkpoint import architecture_of, load_checkpoint, load_initial_parameters, save_checkpoint
from psic.train.feature_cache import cached, content_key, text_tower_fingerprint


class TrainingDivergedError(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainSettings:
    stage: int = 1
    levels: int = 8  # quality levels of one gain network (lambdas of QUALITY_LAMBDAS); 0: one rate, --lambda
    lmbda: float = 0.0067
    lambda_clip: float = 0.05
    attack_level_weights: list[float] | None = None  # gain networks: lambda_clip's multiplier at each level
    objective: str = "uaeo"  # or "naive"
    schedule: str = "mixed"  # "mixed": per-sample beta; "alternate": iterations by mode; "paired": both; "full": full only
    protected_gap_db: float | list[float] | None = None  # paired only: protected may fall this far (dB) below
    # its full decode, one number for the ladder or one per level of a gain network ...
    gap_weight: float = 10.0  # ... beyond that, each dB of excess costs this much (the same at every level)
    attack_cast_grid: int | None = None  # paired only: the attack sees no colour cast coarser than a g x g grid
    level_trigger: bool = False  # condition the CLTG on the quality level (gain networks)
    trigger_branches: int = 0  # decoder stages (from the first, 0-3) whose CLTG adds a gated convolution
    stage1_trains: list[str] | None = None  # parameter-name prefixes stage 1 trains (None: every parameter)
    stage2_trains: list[str] = field(default_factory=lambda: ["g_s."])  # parameter-name prefixes stage 2 trains
    cosine_weight: float = 10.0
    attack_transforms: list[str] = field(default_factory=lambda: ["none"])  # one drawn per step (robustness.TRANSFORMS)
    steps: int = 10000
    batch_size: int = 8
    folder_batch: int = 4
    crop: int = 128
    lr: float = 1e-4
    gain_lr: float = 3e-3  # the level gains of a gain network
    aux_lr: float = 1e-3
    lr_milestones: list[int] = field(default_factory=list)
    lr_drop_share: float | None = None  # with max_minutes: lr drops 10x after this share of them (any hardware)
    grad_clip: float = 1.0
    seed: int = 0
    N: int = 128
    M: int = 192
    cond_hidden: int = 128
    target: str = "psic-surrogate"
    target_weights: str | None = None
    captioned: str | None = None
    folder: str | None = None
    pack: str | None = None  # a data pack (psic train pack) instead of captioned/folder
    val_count: int = 1000
    text_cache: str | None = None  # file keeping the target's caption features between runs
    init: str | None = None  # checkpoint or .safetensors whose parameters a new run starts from (stage 2: the stage-1 result)
    log_every: int = 10
    save_every: int = 200
    max_minutes: float | None = None  # stop (and save) once the run has trained this long, resumes included
    bf16: bool = False  # bfloat16 autocast of the forward pass (CPUs with AVX-512 BF16, GPUs)
    channels_last: bool = False
    reuse_freed_memory: bool = True  # CPU: malloc keeps the pages a step frees (allocator.py; about +20 % steps/s)
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.stage not in (1, 2):
            raise ValueError("stage must be 1 or 2")
        if self.schedule not in ("mixed", "alternate", "paired", "full"):
            raise ValueError("schedule must be 'mixed', 'alternate', 'paired' or 'full'")
        if self.schedule == "full" and self.lambda_clip != 0:
            raise ValueError("the 'full' schedule decodes no protected image to attack: set lambda_clip 0")
        if self.stage1_trains is not None and not self.stage1_trains:
            raise ValueError("stage1_trains must name at least one parameter-name prefix (or be null: every parameter)")
        if not self.stage2_trains or not all(p.startswith("g_s.") for p in self.stage2_trains):
            raise ValueError("stage2_trains must name parts of the decoder (prefixes starting with 'g_s.')")
        if self.level_trigger and not self.levels:
            raise ValueError("level_trigger needs a gain network (levels >= 1)")
        if self.trigger_branches not in (0, 1, 2, 3):
            raise ValueError("trigger_branches must be 0, 1, 2 or 3 (decoder feature stages)")
        if self.attack_level_weights is not None and (
            not self.levels or len(self.attack_level_weights) != self.levels or min(self.attack_level_weights) < 0
        ):
            raise ValueError("attack_level_weights needs one weight >= 0 per quality level of a gain network")
        if self.protected_gap_db is not None:
            self._check_gap_allowance()
        if self.attack_cast_grid is not None and (
            self.schedule != "paired" or not isinstance(self.attack_cast_grid, int) or self.attack_cast_grid < 1
        ):
            raise ValueError("attack_cast_grid needs the paired schedule and must be >= 1")
        if self.objective not in ("uaeo", "naive"):
            raise ValueError("objective must be 'uaeo' or 'naive'")
        if self.crop % DOWNSAMPLING:
            raise ValueError(f"crop must be a multiple of {DOWNSAMPLING}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise TypeError("seed must be an int")
        unknown = sorted(set(self.attack_transforms) - set(robustness.TRANSFORMS))
        if unknown or not self.attack_transforms:
            raise ValueError(f"attack_transforms must be a non-empty list of {', '.join(robustness.TRANSFORMS)}")
        if not 0 <= self.levels <= len(QUALITY_LAMBDAS):
            raise ValueError(f"levels must be 0 (one rate) or 1..{len(QUALITY_LAMBDAS)}")
        if self.lr_drop_share is not None and (self.max_minutes is None or not 0 < self.lr_drop_share < 1):
            raise ValueError("lr_drop_share needs max_minutes and must be between 0 and 1")
        if self.pack is not None and (self.captioned or self.folder):
            raise ValueError("give a data pack or data folders, not both")
        if self.captioned is None and self.folder is None and self.pack is None:
            raise ValueError("give a captioned image set, an image folder, or both (or a data pack)")

    def _check_gap_allowance(self) -> None:
        allowance = self.protected_gap_db
        values: list = allowance if isinstance(allowance, list) else [allowance]
        if isinstance(allowance, list) and (not self.levels or len(values) != self.levels):
            raise ValueError("a per-level protected_gap_db needs one allowance per quality level of a gain network")
        if self.schedule != "paired" or not all(isinstance(v, (int, float)) and v >= 0 for v in values):
            raise ValueError("protected_gap_db needs the paired schedule and must be >= 0")


def bf16_is_native(device: torch.device) -> bool:
    """Whether bf16 autocast pays off here: on GPUs and on CPUs whose oneDNN has bf16 kernels.

    Elsewhere (an AVX2-only CPU) bf16 is emulated and a training step ran over ten times
    slower than in fp32.
    """
    if device.type != "cpu":
        return True
    supported = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(supported()) if supported is not None else torch.backends.cpu.get_cpu_capability() == "AVX512"


class Trainer:
    """Trains one model; under ``torchrun`` each process trains a DDP replica on its own batches."""

    def __init__(self, settings: TrainSettings, run_dir: str | Path, *, vlp=None) -> None:
        self.settings = settings
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.rank, self.world = distributed.setup(settings.device)
        self.device = distributed.device_for(settings.device)
        self.bf16 = settings.bf16 and bf16_is_native(self.device)
        if settings.reuse_freed_memory and self.device.type == "cpu":
            allocator.reuse_freed_memory()
        if settings.bf16 and not self.bf16:
            warnings.warn("this CPU has no native bf16 (AVX-512 BF16 or AMX): training in fp32, which is faster here",
                          PsicWarning, stacklevel=2)
        self.rng = np.random.default_rng([settings.seed, self.rank])
        torch.manual_seed(settings.seed)  # identical initial weights on every rank
        self.model = ConditionalHyperprior(architecture_of(asdict(settings))).to(self.device)
        if settings.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.lambdas = torch.tensor(QUALITY_LAMBDAS[: settings.levels] or (settings.lmbda,), device=self.device)
        self.vlp = vlp
        self.captioned_pool, self.folder_pool, self.text_features = self._data()
        self.optimizer, self.aux_optimizer = self._optimizers()
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, settings.lr_milestones, gamma=0.1)
        self.step = 0
        self.lr_dropped = False  # lr_drop_share reached (kept in checkpoints: the drop happens once)
        self.elapsed_before = 0.0  # training seconds of earlier processes of this run (resumes add up)
        self.started: float | None = None  # when this process's fit() began
        if settings.init and not (self.run_dir / "last.pt").exists():
            load_initial_parameters(self.model, settings.init)
        self._freeze_for_stage()
        if (self.run_dir / "last.pt").exists():
            self.step = load_checkpoint(self.run_dir / "last.pt", self)
        self.network = distributed.wrap(self.model, self.device)

    # --- setup -------------------------------------------------------------------------

    def _data(self):
        s = self.settings
        if s.pack:
            return self._pack_data()
        captioned_pool, text_features = None, None
        if s.captioned:
            train_set, _ = split(read_captioned(s.captioned), s.val_count)
            captioned_pool = ImagePool.from_captioned(train_set)
            if s.lambda_clip > 0:
                if self.vlp is None:
                    from psic.vlp import load_vlp

                    self.vlp = load_vlp(s.target, device=self.device, weights=s.target_weights)
                captions = [c for caps in train_set.captions for c in caps]
                text_features = self._caption_features(captions)
        folder_pool = ImagePool.from_folder(image_folder(s.folder)) if s.folder else None
        return captioned_pool, folder_pool, text_features

    def _pack_data(self):
        """Pools and caption features from a data pack; the target needs only its image tower."""
        from psic.codec.weights import file_sha256
        from psic.train.pack import load_pack
        from psic.vlp.loading import load_image_tower, surrogate_weights_path

        s = self.settings
        pack = load_pack(s.pack)
        features = None
        if pack.text_features is not None and s.lambda_clip > 0:
            target_file = surrogate_weights_path(s.target, s.target_weights)
            if (pack.meta["target"], pack.meta["target_sha256"]) != (s.target, file_sha256(target_file)):
                raise ValueError(f"{s.pack} holds caption features of another target ({pack.meta['target']})")
            if self.vlp is None:
                self.vlp = load_image_tower(s.target, device=self.device, weights=s.target_weights)
            features = pack.text_features.to(self.device)
        return pack.captioned, pack.folder, features

    def _caption_features(self, captions: list[str]) -> torch.Tensor:
        """Target text features of every caption (frozen target: cached across runs and stages)."""
        order = sorted(range(len(captions)), key=lambda i: len(captions[i]))  # little padding per chunk

        def compute() -> torch.Tensor:
            features = torch.empty(0)
            for start in range(0, len(order), 512):
                rows = order[start : start + 512]
                chunk = self.vlp.encode_text([captions[i] for i in rows]).cpu()
                if features.numel() == 0:
                    features = torch.empty(len(captions), chunk.shape[1])
                features[rows] = chunk
            return features

        cache = Path(self.settings.text_cache) if self.settings.text_cache else None
        key = content_key(text_tower_fingerprint(self.vlp), *captions)
        return cached(cache, key, compute).to(self.device)

    def _optimizers(self):
        """Main and auxiliary (quantile) optimizers; the level gains get their own, larger step.

        The gains decide each level's rate, and the shared transforms change under them all
        the time: with the network's small learning rate they lag far behind, and every
        level's rate drifts toward what the highest-lambda samples want.
        """
        named = list(self.model.named_parameters())
        gains = [p for n, p in named if n.startswith("gains.")]
        main = [p for n, p in named if not n.endswith("quantiles") and not n.startswith("gains.")]
        aux = [p for n, p in named if n.endswith("quantiles")]
        groups = [{"params": main}] + ([{"params": gains, "lr": self.settings.gain_lr}] if gains else [])
        return torch.optim.Adam(groups, lr=self.settings.lr), torch.optim.Adam(aux, lr=self.settings.aux_lr)

    def _freeze_for_stage(self) -> None:
        s = self.settings
        prefixes = s.stage2_trains if s.stage == 2 else s.stage1_trains
        if prefixes is None:
            return
        names = [name for name, _ in self.model.named_parameters()]
        unmatched = [prefix for prefix in prefixes if not any(name.startswith(prefix) for name in names)]
        if unmatched:  # a typo would silently train less
            raise ValueError(f"stage {s.stage}'s trainable prefixes match no parameter name: {', '.join(unmatched)}")
        for name, parameter in self.model.named_parameters():
            parameter.requires_grad_(name.startswith(tuple(prefixes)))

    # --- one step ------------------------------------------------------------------------

    def _batch(self) -> Batch:
        s = self.settings
        parts = []
        if self.captioned_pool is not None:
            parts.append(self.captioned_pool.sample(s.batch_size, s.crop, self.rng))
        if self.folder_pool is not None:
            parts.append(self.folder_pool.sample(s.folder_batch, s.crop, self.rng))
        batch = parts[0] if len(parts) == 1 else concat(*parts)
        return Batch(batch.images.to(self.device), batch.caption_index.to(self.device))

    def _betas(self, count: int) -> torch.Tensor:
        if self.settings.schedule == "full":
            return torch.zeros(count)
        if self.settings.schedule == "alternate":
            return torch.full((count,), float(self.step % 2 == 1))  # even steps full, odd protected
        return torch.from_numpy(self.rng.integers(0, 2, size=count).astype(np.float32))

    def _levels(self, count: int) -> torch.Tensor | None:
        """One quality level per sample, uniform over the ladder (None for a one-rate network)."""
        if self.settings.levels == 0:
            return None
        return torch.from_numpy(self.rng.integers(0, self.settings.levels, size=count))

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def losses(self, batch: Batch, beta: torch.Tensor, level: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
        """The training objective on one batch (with the training-mode quantization noise).

        Every sample pays its own rate plus its level's lambda times its own distortion, so
        one network learns the whole ladder from mixed batches.
        """
        s = self.settings
        self.model.train()
        images = batch.images
        if s.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            out = self.network(images, beta, level)
        x_hat = out["x_hat"].float().clamp(0, 1)
        bpp = losses.bits_per_pixel_per_image(out["likelihoods"], images.shape[2] * images.shape[3])
        mse = (x_hat - images).pow(2).flatten(1).mean(dim=1)
        lambdas = self.lambdas[level.to(self.device)] if level is not None else self.lambdas.expand(len(mse))
        loss = (bpp + lambdas * 255**2 * mse).mean()
        if s.protected_gap_db is not None:
            loss = loss + self._gap_penalty(mse, beta, self._gap_allowance(level))
        full, protected = beta == 0, beta == 1
        record = {"bpp": bpp.mean().item()}
        for mode, mask in (("full", full), ("protected", protected)):
            if mask.any():
                record[f"psnr_{mode}"] = losses.psnr(mse[mask].detach().mean())
        attack_mask = protected & (batch.caption_index >= 0)
        if s.lambda_clip > 0 and int(attack_mask.sum()) >= 2:
            weights = self._attack_weights(level, attack_mask)
            attacked = x_hat if s.attack_cast_grid is None else self._without_cast(x_hat, s.attack_cast_grid)
            with self._autocast():
                attack, stats = self._attack(
                    attacked[attack_mask], images[attack_mask], batch.caption_index[attack_mask], weights
                )
            loss = loss + s.lambda_clip * attack.float()
            record.update(stats)
        return loss, record

    def _attack_weights(self, level: torch.Tensor | None, attack_mask: torch.Tensor) -> torch.Tensor | None:
        """Each attacked sample's multiplier of lambda_clip: one attack weight for the whole
        ladder over-distorts the top levels' protected decodes and under-attacks the lowest."""
        if self.settings.attack_level_weights is None or level is None:
            return None
        weights = torch.tensor(self.settings.attack_level_weights, device=self.device)
        return weights[level.to(self.device)][attack_mask]

    def _gap_allowance(self, level: torch.Tensor | None) -> float | torch.Tensor:
        """The protected decode's allowed distance below full, per sample where it differs by level:
        one allowance for the ladder lifted the top levels' protected decodes until their attack
        success fell (segment 9), while the low levels need it to stay clean."""
        allowance = self.settings.protected_gap_db
        if allowance is None:
            raise ValueError("no protected_gap_db is set")
        if not isinstance(allowance, list):
            return allowance
        if level is None:
            raise ValueError("a per-level protected_gap_db needs the level of every sample")
        return torch.tensor(allowance, device=self.device)[level.to(self.device)]

    def _gap_penalty(self, mse: torch.Tensor, beta: torch.Tensor, gap_db: float | torch.Tensor) -> torch.Tensor:
        """Extra cost of a protected decode that falls more than ``gap_db`` below the full decode
        of the same image (a paired batch: full half, then protected half), in dB beyond the gap;
        ``gap_db`` is one number or one per sample of the batch (the pair's protected half counts).

        Counted in dB, one weight means the same at every level: scaled by the level's lambda it
        ruled the top of the ladder and hardly touched the bottom (segment 3). The full decode is
        the reference, detached: the penalty only pulls the protected one up.
        """
        count = len(mse) // 2
        if len(mse) % 2 or bool((beta[:count] != 0).any()) or bool((beta[count:] != 1).any()):
            raise ValueError("the gap penalty needs a paired batch: the same images full, then protected")
        gap = 10 * torch.log10(mse[count:].clamp_min(1e-10) / mse[:count].detach().clamp_min(1e-10))
        if isinstance(gap_db, torch.Tensor):
            gap_db = gap_db[count:]
        return self.settings.gap_weight * torch.relu(gap - gap_db).sum() / len(mse)

    @staticmethod
    def _without_cast(x_hat: torch.Tensor, grid: int) -> torch.Tensor:
        """A paired batch (full half, then protected half) whose protected half has lost its colour cast.

        A cast is the cheapest way to fool a small target (one RGB bias at the decoder's last
        stage does it) and the most visible: an attack that sees this view gains nothing from
        one, so only the distortion terms act on it. The full half is a constant here.
        """
        count = len(x_hat) // 2
        full = x_hat[:count].detach()
        return torch.cat([full, robustness.without_cast(x_hat[count:], full, grid)])

    def optimize(self, batch: Batch, beta: torch.Tensor, level: torch.Tensor | None = None) -> dict:
        """One optimizer step (and, in stage 1, one step of the entropy bottleneck's quantiles)."""
        s = self.settings
        loss, record = self.losses(batch, beta, level)
        if not torch.isfinite(loss):
            raise TrainingDivergedError(f"loss is {loss.item()} at step {self.step}; the last good checkpoint is kept")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], s.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        if s.stage == 1 and self.model.entropy_bottleneck.quantiles.requires_grad:
            aux = self.model.aux_loss()
            self.aux_optimizer.zero_grad(set_to_none=True)
            aux.backward()
            distributed.average_gradients(self.model.entropy_bottleneck.quantiles)
            self.aux_optimizer.step()
            record["aux"] = aux.item()
        self.step += 1
        record.update(step=self.step, loss=loss.item(), lr=self.optimizer.param_groups[0]["lr"])
        return record

    def train_step(self) -> dict:
        batch = self._batch()
        count = len(batch.images)
        if self.settings.schedule == "paired":  # the same images, first full, then protected
            level = self._levels(count)
            batch = Batch(batch.images.repeat(2, 1, 1, 1), batch.caption_index.repeat(2))
            beta = torch.cat([torch.zeros(count), torch.ones(count)])
            return self.optimize(batch, beta.to(self.device), None if level is None else level.repeat(2))
        return self.optimize(batch, self._betas(count).to(self.device), self._levels(count))

    def _attack(self, protected_images, original_images, caption_index, weights=None):
        text = self.text_features[caption_index]
        transform = self.settings.attack_transforms[int(self.rng.integers(len(self.settings.attack_transforms)))]
        protected = self.vlp.encode_image(robustness.apply(transform, protected_images))
        with torch.no_grad():
            clean = self.vlp.encode_image(original_images)
        terms = losses.attack_terms(protected, clean, text, self.settings.objective, weights)
        combined = losses.combine_fixed(terms, self.settings.cosine_weight) if self.settings.stage == 1 else losses.combine_adaptive(terms)
        stats = {
            "attack": combined.item(),
            "cosine": terms.cosine.item(),
            "infonce": terms.infonce.item(),
            "clean_pairs": int(terms.split.clean.sum()),
            "asr_in_batch": losses.in_batch_attack_success(protected.detach(), clean, text),
        }
        return combined, stats

    # --- the loop ----------------------------------------------------------------------

    def fit(self, log=None) -> None:
        s = self.settings
        lead = self.rank == 0  # only the first process logs and saves
        if lead:
            (self.run_dir / "settings.json").write_text(json.dumps(asdict(s), indent=2) + "\n")
        progress = _progress(s.steps, self.step) if lead else None
        window = _Window()
        self.started = time.time()
        with open(self.run_dir / "log.jsonl", "a", encoding="utf-8") if lead else open(os.devnull, "w") as log_file:
            budget = None if s.max_minutes is None else 60 * s.max_minutes
            while self.step < s.steps:
                if budget is not None and self.training_seconds() >= budget:
                    break
                self._drop_lr_when_due()
                record = self.train_step()
                window.add(record)
                if progress is not None:
                    progress.update(1)
                    progress.set_postfix(_postfix(record))
                if self.step % s.log_every == 0:
                    summary = window.pop(step=self.step, seconds=round(self.training_seconds(), 1))
                    log_file.write(json.dumps(summary) + "\n")
                    log_file.flush()
                    if log is not None and lead:
                        log(summary)
                if lead and self.step % s.save_every == 0:
                    save_checkpoint(self.run_dir / "last.pt", self)
            if lead:
                save_checkpoint(self.run_dir / "last.pt", self)
        if progress is not None:
            progress.close()

    def _drop_lr_when_due(self) -> None:
        """The time-based counterpart of lr_milestones: the main learning rates fall 10x, once."""
        s = self.settings
        if self.lr_dropped or s.lr_drop_share is None or s.max_minutes is None:
            return
        if self.training_seconds() >= 60 * s.max_minutes * s.lr_drop_share:
            for group in self.optimizer.param_groups:
                group["lr"] *= 0.1
            self.lr_dropped = True

    def training_seconds(self) -> float:
        """Training seconds of this run so far, over every resume."""
        return self.elapsed_before + (time.time() - self.started if self.started is not None else 0.0)


class _Window:
    """Means of every logged figure since the last log line (modes alternate, so single steps mislead)."""

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = {}

    def add(self, record: dict) -> None:
        for key, value in record.items():
            if key != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                self.values.setdefault(key, []).append(float(value))

    def pop(self, **extra) -> dict:
        summary = {key: sum(v) / len(v) for key, v in self.values.items()}
        self.values = {}
        return {**extra, **summary}


def _postfix(record: dict) -> dict:
    psnr = record.get("psnr_full", record.get("psnr_protected", float("nan")))
    return {"loss": f"{record['loss']:.3f}", "bpp": f"{record['bpp']:.3f}", "psnr": f"{psnr:.2f}",
            "asr": f"{record.get('asr_in_batch', float('nan')):.0f}"}


def _progress(total: int, done: int):
    if not sys.stderr.isatty() or os.environ.get("PSIC_NO_PROGRESS"):
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=done, file=sys.stderr, dynamic_ncols=True)
