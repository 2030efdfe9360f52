"""Training: the attack losses on hand-made features, the loop, checkpoints, guards."""

from __future__ import annotations

import math
import platform
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from psic.datasets import read_captioned, split
from psic.errors import PsicWarning
from psic.train import allocator, losses
from psic.train import trainer as trainer_module
from psic.train.batches import Batch
from psic.train.trainer import Trainer, TrainingDivergedError, TrainSettings


def unit(rows) -> torch.Tensor:
    return F.normalize(torch.tensor(rows, dtype=torch.float32), dim=-1)


# Images 0 and 1 match their own captions best; image 2 matches caption 0 best (a "noisy" pair).
IMAGES = unit([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.9, 0.1, 0.0]])
TEXTS = unit([[1.0, 0.05, 0.0], [0.0, 1.0, 0.1], [0.0, 0.2, 1.0]])


def test_belief_rows_are_proper_fractions():
    belief = losses.bidirectional_belief(IMAGES, TEXTS)
    assert torch.all(belief > 0)
    assert torch.all(belief.sum(dim=1) < 1)  # Eq. 7's +1 keeps mass for "uncertain"


def test_split_marks_matched_pairs_clean_and_targets_least_evidence():
    split_ = losses.evidence_split(IMAGES, TEXTS)
    assert split_.clean.tolist() == [True, True, False]
    assert split_.noisy.tolist() == [False, False, True]
    evidence = torch.exp(torch.tanh(IMAGES @ TEXTS.T / losses.CLIP_INIT_TEMPERATURE) / losses.EVIDENCE_TAU)
    both = evidence + evidence.T
    for i in range(3):
        others = [j for j in range(3) if j != i]
        expected = min(others, key=lambda j: both[i, j].item())
        assert split_.target[i].item() == expected
        assert split_.target[i].item() != i


def test_text_to_image_evidence_counts_in_the_target_choice():
    """Eq. 6: pair (i, j) also gets the evidence of caption i for image j, not only of image i for caption j.

    Image 0 is slightly less similar to caption 1 than to caption 2, so image-to-text evidence
    alone picks caption 1 as the least-evidence target; but caption 0 points at image 1 and
    away from image 2, so both directions together pick caption 2.
    """
    similarity = torch.tensor([[0.9, 0.10, 0.12], [0.5, 0.9, 0.0], [-0.5, 0.0, 0.9]])
    images, texts = torch.eye(3), similarity.T.contiguous()  # images @ texts.T == similarity
    assert losses.evidence_split(images, texts).target[0].item() == 2
    belief = losses.bidirectional_belief(images, texts)
    assert not torch.allclose(belief, belief.T)  # each row is normalized on its own, the evidence is symmetric


def test_empty_subsets_give_zero_not_nan():
    protected = IMAGES.clone().requires_grad_(True)
    nobody = torch.zeros(3, dtype=torch.bool)
    cosine = losses.naive_cosine(protected, TEXTS, nobody)
    infonce = losses.targeted_infonce(protected, TEXTS, losses.evidence_split(IMAGES, TEXTS), nobody)
    (cosine + infonce).backward()
    assert cosine.item() == 0 and infonce.item() == 0
    assert torch.isfinite(protected.grad).all()


def test_single_row_subset_keeps_batch_dimension():
    protected = IMAGES.clone().requires_grad_(True)
    one = torch.tensor([False, False, True])
    value = losses.targeted_infonce(protected, TEXTS, losses.evidence_split(IMAGES, TEXTS), one)
    assert value.dim() == 0 and math.isfinite(value.item())


def test_infonce_gradient_pulls_protected_image_toward_its_target_caption():
    split_ = losses.evidence_split(IMAGES, TEXTS)
    protected = IMAGES.clone().requires_grad_(True)
    losses.targeted_infonce(protected, TEXTS, split_, split_.noisy).backward()
    target = split_.target[2]
    moved = F.normalize(IMAGES[2] - 0.5 * protected.grad[2], dim=0)
    assert moved @ TEXTS[target] > IMAGES[2] @ TEXTS[target]


def test_naive_objective_uses_every_pair():
    terms = losses.attack_terms(IMAGES, IMAGES, TEXTS, objective="naive")
    assert terms.cosine.item() == pytest.approx((IMAGES * TEXTS).sum(dim=1).mean().item())
    assert terms.infonce.item() == 0


def test_attack_weights_scale_each_pairs_share():
    split_ = losses.evidence_split(IMAGES, TEXTS)
    everyone = torch.ones(3, dtype=torch.bool)
    weights = torch.tensor([2.0, 0.0, 1.0])
    cosines = (IMAGES * TEXTS).sum(dim=1)
    weighted = losses.naive_cosine(IMAGES, TEXTS, everyone, weights).item()
    assert weighted == pytest.approx((weights * (1 + cosines)).mean().item() - 1)
    assert losses.naive_cosine(IMAGES, TEXTS, everyone).item() == pytest.approx(cosines.mean().item())
    plain = losses.targeted_infonce(IMAGES, TEXTS, split_, split_.noisy)
    doubled = losses.targeted_infonce(IMAGES, TEXTS, split_, split_.noisy, torch.full((3,), 2.0))
    assert doubled.item() == pytest.approx(2 * plain.item())


@pytest.mark.parametrize("cosine", [-0.99, -0.3, 0.0, 0.4])
def test_adaptive_balance_stays_positive_and_bounded(cosine):
    terms = losses.AttackTerms(torch.tensor(cosine), torch.tensor(2.0), losses.evidence_split(IMAGES, TEXTS))
    value = losses.combine_adaptive(terms).item()
    c, n = 1 + cosine, 2.0
    assert 0 <= value <= max(c, n)
    assert value == pytest.approx(2 * c * n / (c + n), rel=1e-4)


def test_in_batch_attack_success_counts_only_pairs_right_before():
    wrong_after = unit([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert losses.in_batch_attack_success(wrong_after, IMAGES, TEXTS) == pytest.approx(50.0)


def test_captions_keep_commas_and_split_is_disjoint_and_stable(captioned_dir):
    data = read_captioned(captioned_dir)
    assert "a photo number 0, with a comma" in data.captions[0]
    train, val = split(data, val_count=3)
    assert len(val.names) == 3 and not set(train.names) & set(val.names)
    assert split(data, val_count=3)[1].names == val.names


def settings(captioned_dir, **overrides) -> TrainSettings:
    base = {
        "captioned": str(captioned_dir), "val_count": 2, "N": 8, "M": 12, "cond_hidden": 16, "batch_size": 4,
        "crop": 64, "steps": 3, "lr": 1e-3, "lambda_clip": 0.5, "log_every": 1, "save_every": 1, "seed": 3,
    }
    base.update(overrides)
    return TrainSettings(**base)


def fixed_batch(trainer):
    batch = trainer._batch()
    beta = torch.tensor([0.0, 1.0, 1.0, 1.0])
    level = torch.tensor([0, 2, 5, 7])
    return batch, beta, level


def loss_with_seed(trainer, batch, beta, level, seed=11) -> float:
    torch.manual_seed(seed)  # the same quantization noise for both evaluations
    with torch.no_grad():
        return trainer.losses(batch, beta, level)[0].item()


@pytest.mark.parametrize("bf16", [False, True])
def test_one_step_lowers_the_loss_on_a_fixed_batch(captioned_dir, tiny_vlp, tmp_path, bf16):
    trainer = Trainer(settings(captioned_dir), tmp_path, vlp=tiny_vlp)
    trainer.bf16 = bf16  # also where this CPU would fall back to fp32
    batch, beta, level = fixed_batch(trainer)
    before = loss_with_seed(trainer, batch, beta, level)
    torch.manual_seed(11)
    record = trainer.optimize(batch, beta, level)
    assert "asr_in_batch" in record and "psnr_protected" in record
    assert loss_with_seed(trainer, batch, beta, level) < before


def test_bf16_falls_back_to_fp32_with_a_warning_where_the_cpu_would_emulate_it(
    captioned_dir, tiny_vlp, tmp_path, monkeypatch
):
    monkeypatch.setattr(trainer_module, "bf16_is_native", lambda device: False)
    with pytest.warns(PsicWarning, match="fp32"):
        trainer = Trainer(settings(captioned_dir, bf16=True), tmp_path, vlp=tiny_vlp)
    assert not trainer.bf16
    batch, beta, level = fixed_batch(trainer)
    with torch.no_grad(), trainer._autocast():
        out = trainer.network(batch.images, beta, level)
    assert out["x_hat"].dtype == torch.float32


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the settings are glibc's")
def test_reuse_freed_memory_takes_every_glibc_setting():
    assert allocator.reuse_freed_memory()


def test_reuse_freed_memory_leaves_other_platforms_alone(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert not allocator.reuse_freed_memory()


@pytest.mark.parametrize("reuse", [False, True])
def test_a_cpu_trainer_keeps_freed_memory_only_when_its_settings_ask(captioned_dir, tiny_vlp, tmp_path, monkeypatch, reuse):
    calls = []
    monkeypatch.setattr(allocator, "reuse_freed_memory", lambda: calls.append(1) or True)
    Trainer(settings(captioned_dir, reuse_freed_memory=reuse), tmp_path, vlp=tiny_vlp)
    assert len(calls) == int(reuse)


def test_cli_shows_the_bf16_fallback_as_one_warning_line(captioned_dir, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from psic.cli.main import cli

    monkeypatch.setattr(trainer_module, "bf16_is_native", lambda device: False)
    config = tmp_path / "settings.json"
    config.write_text('{"N": 8, "M": 12, "cond_hidden": 16, "crop": 64, "batch_size": 4, "val_count": 2, '
                      '"lambda_clip": 0, "levels": 0, "bf16": true}')
    result = CliRunner().invoke(cli, ["train", "run", "--run-dir", str(tmp_path / "run"), "--config", str(config),
                                      "--steps", "1", "--captioned", str(captioned_dir)])
    assert result.exit_code == 0, result.output
    warning_lines = [line for line in result.output.splitlines() if "fp32" in line]
    assert len(warning_lines) == 1 and warning_lines[0].startswith("psic: warning: this CPU has no native bf16")


def test_each_sample_pays_its_own_levels_lambda(captioned_dir, tiny_vlp, tmp_path):
    trainer = Trainer(settings(captioned_dir, lambda_clip=0), tmp_path, vlp=tiny_vlp)
    batch, beta, _ = fixed_batch(trainer)
    torch.manual_seed(11)
    with torch.no_grad():
        out = trainer.model(batch.images, beta, torch.full((4,), 7))
    rate = losses.bits_per_pixel_per_image(out["likelihoods"], batch.images.shape[2] * batch.images.shape[3])
    mse = (out["x_hat"].clamp(0, 1) - batch.images).pow(2).flatten(1).mean(dim=1)
    expected = (rate + 0.18 * 255**2 * mse).mean().item()  # quality 8: CompressAI's lambda 0.18
    assert loss_with_seed(trainer, batch, beta, torch.full((4,), 7)) == pytest.approx(expected, rel=1e-5)


def test_resume_reproduces_the_next_step(captioned_dir, tiny_vlp, tmp_path):
    uninterrupted = Trainer(settings(captioned_dir, steps=2), tmp_path / "a", vlp=tiny_vlp)
    uninterrupted.fit()
    expected = uninterrupted.train_step()  # step 3, straight on

    interrupted = Trainer(settings(captioned_dir, steps=2), tmp_path / "b", vlp=tiny_vlp)
    interrupted.fit()
    resumed = Trainer(settings(captioned_dir, steps=3), tmp_path / "b", vlp=tiny_vlp)
    assert resumed.step == 2
    record = resumed.train_step()  # step 3 after a restart: same batch, noise and optimizer state
    assert record["loss"] == pytest.approx(expected["loss"], rel=1e-6)
    for a, b in zip(resumed.model.parameters(), uninterrupted.model.parameters()):
        assert torch.allclose(a, b, rtol=0, atol=1e-6), (a - b).abs().max()


def test_the_time_based_lr_drop_happens_once_and_survives_a_resume(captioned_dir, tiny_vlp, tmp_path):
    timed = settings(captioned_dir, steps=1, max_minutes=10.0, lr_drop_share=0.5)
    early = Trainer(timed, tmp_path / "early", vlp=tiny_vlp)
    early.fit()
    assert early.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3) and not early.lr_dropped

    trainer = Trainer(timed, tmp_path / "run", vlp=tiny_vlp)
    trainer.elapsed_before = 301.0  # past half of the 10 minutes
    trainer.fit()
    lrs = [group["lr"] for group in trainer.optimizer.param_groups]
    assert lrs == pytest.approx([1e-4, 3e-4])  # the network's lr and the level gains' lr, both 10x lower
    resumed = Trainer(settings(captioned_dir, steps=2, max_minutes=10.0, lr_drop_share=0.5), tmp_path / "run",
                      vlp=tiny_vlp)
    resumed.fit()
    assert [group["lr"] for group in resumed.optimizer.param_groups] == pytest.approx(lrs)  # not dropped again
    with pytest.raises(ValueError, match="lr_drop_share needs max_minutes"):
        settings(captioned_dir, lr_drop_share=0.5)


def test_resuming_under_other_network_settings_names_the_difference(captioned_dir, tiny_vlp, tmp_path):
    Trainer(settings(captioned_dir, steps=1, levels=8), tmp_path, vlp=tiny_vlp).fit()
    with pytest.raises(ValueError, match=r"level_trigger false \(now true\)"):
        Trainer(settings(captioned_dir, steps=2, levels=8, level_trigger=True), tmp_path, vlp=tiny_vlp)
    resumed = Trainer(settings(captioned_dir, steps=2, levels=8, lr=5e-4), tmp_path, vlp=tiny_vlp)  # lr may change
    assert resumed.step == 1


def test_nan_stops_the_run_and_keeps_the_last_checkpoint(captioned_dir, tiny_vlp, tmp_path, monkeypatch):
    trainer = Trainer(settings(captioned_dir, steps=1), tmp_path, vlp=tiny_vlp)
    trainer.fit()
    saved = (tmp_path / "last.pt").read_bytes()
    trainer = Trainer(settings(captioned_dir, steps=3), tmp_path, vlp=tiny_vlp)
    monkeypatch.setattr(losses, "bits_per_pixel_per_image", lambda *a: torch.tensor([float("nan")]))
    with pytest.raises(TrainingDivergedError):
        trainer.fit()
    assert (tmp_path / "last.pt").read_bytes() == saved


def test_stage_two_trains_only_the_decoder(captioned_dir, tiny_vlp, tmp_path):
    stage1 = Trainer(settings(captioned_dir, steps=1), tmp_path / "s1", vlp=tiny_vlp)
    stage1.fit()
    stage2 = Trainer(
        settings(captioned_dir, stage=2, steps=1, init=str(tmp_path / "s1" / "last.pt")), tmp_path / "s2", vlp=tiny_vlp
    )
    encoder_before = [p.clone() for p in stage2.model.g_a.parameters()]
    decoder_before = [p.clone() for p in stage2.model.g_s.parameters()]
    stage2.fit()
    assert all(torch.equal(a, b) for a, b in zip(encoder_before, stage2.model.g_a.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(decoder_before, stage2.model.g_s.parameters()))


def test_stage_two_can_train_the_trigger_alone(captioned_dir, tiny_vlp, tmp_path):
    stage1 = Trainer(settings(captioned_dir, steps=1), tmp_path / "s1", vlp=tiny_vlp)
    stage1.fit()
    stage2 = Trainer(
        settings(captioned_dir, stage=2, steps=1, init=str(tmp_path / "s1" / "last.pt"), stage2_trains=["g_s.condition."]),
        tmp_path / "s2", vlp=tiny_vlp,
    )
    before = {name: p.clone() for name, p in stage2.model.named_parameters()}
    stage2.fit()
    changed = {name for name, p in stage2.model.named_parameters() if not torch.equal(p, before[name])}
    assert changed and all(name.startswith("g_s.condition.") for name in changed)
    with pytest.raises(ValueError, match="stage2_trains"):
        settings(captioned_dir, stage2_trains=["g_a."])


def test_stage_one_can_train_the_encoder_side_alone_on_the_full_decode(captioned_dir, tiny_vlp, tmp_path):
    encoder_side = ["g_a.", "h_a.", "h_s.", "gains.log_gain"]  # the entropy bottleneck (and its quantiles) stays
    trainer = Trainer(
        settings(captioned_dir, steps=2, levels=8, schedule="full", lambda_clip=0, stage1_trains=encoder_side),
        tmp_path, vlp=tiny_vlp,
    )
    assert trainer._betas(4).tolist() == [0.0] * 4
    before = {name: p.clone() for name, p in trainer.model.named_parameters()}
    trainer.fit()
    changed = {name for name, p in trainer.model.named_parameters() if not torch.equal(p, before[name])}
    assert any(name.startswith("g_a.") for name in changed) and "gains.log_gain" in changed
    assert all(name.startswith(tuple(encoder_side)) for name in changed)
    with pytest.raises(ValueError, match="match no parameter name: ha."):  # a typo is not a smaller trainable set
        Trainer(settings(captioned_dir, stage1_trains=["g_a.", "ha."]), tmp_path / "typo", vlp=tiny_vlp)


def test_a_run_can_start_from_an_exported_weights_file(captioned_dir, tiny_vlp, tmp_path):
    from psic.codec.weights import save_weights

    stage1 = Trainer(settings(captioned_dir, steps=1), tmp_path / "s1", vlp=tiny_vlp)
    stage1.fit()
    stage1.model.eval().freeze_entropy_models()
    save_weights(stage1.model, tmp_path / "shipped.safetensors", name="t")
    stage2 = Trainer(
        settings(captioned_dir, stage=2, steps=1, init=str(tmp_path / "shipped.safetensors")), tmp_path / "s2", vlp=tiny_vlp
    )
    for a, b in zip(stage1.model.parameters(), stage2.model.parameters()):
        assert a.dtype == b.dtype == torch.float32
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-4)  # fp16 storage of the decoder


def test_alternate_schedule_switches_mode_every_iteration(captioned_dir, tiny_vlp, tmp_path):
    trainer = Trainer(settings(captioned_dir, schedule="alternate"), tmp_path, vlp=tiny_vlp)
    assert trainer._betas(3).tolist() == [0.0, 0.0, 0.0]
    trainer.step = 1
    assert trainer._betas(3).tolist() == [1.0, 1.0, 1.0]


def test_per_level_attack_weights_apply_to_each_samples_level(captioned_dir, tiny_vlp, tmp_path):
    """Weight 0 at every level attacked in the batch (2, 5, 7) removes the attack's gradient;
    weight 1 everywhere is the plain loss."""
    def trainer_with(**overrides) -> Trainer:
        run_dir = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
        return Trainer(settings(captioned_dir, levels=8, **overrides), run_dir, vlp=tiny_vlp)

    def gradient_of(trainer: Trainer) -> torch.Tensor:
        torch.manual_seed(11)
        trainer.losses(*fixed_batch(trainer))[0].backward()
        return torch.cat([p.grad.flatten() for p in trainer.model.parameters() if p.grad is not None])

    def loss_of(trainer: Trainer) -> float:  # each fresh trainer draws the same batch
        return loss_with_seed(trainer, *fixed_batch(trainer))

    assert loss_of(trainer_with(attack_level_weights=[1.0] * 8)) == pytest.approx(loss_of(trainer_with()))
    no_attack = gradient_of(trainer_with(lambda_clip=0))
    assert not torch.allclose(gradient_of(trainer_with()), no_attack)
    zero_weights = gradient_of(trainer_with(attack_level_weights=[1, 1, 0, 1, 1, 0, 1, 0]))
    assert torch.allclose(zero_weights, no_attack, atol=1e-6)


@pytest.mark.parametrize(
    "bad",
    [
        {"attack_level_weights": [1.0]}, {"attack_level_weights": [1.0] * 7 + [-1.0]},
        {"levels": 0, "attack_level_weights": []},
        {"seed": 1.5}, {"schedule": "random"}, {"stage": 3}, {"objective": "x"}, {"crop": 100},
        {"protected_gap_db": 1.0}, {"schedule": "paired", "protected_gap_db": -1.0}, {"level_trigger": True, "levels": 0},
        {"trigger_branches": 4},
        {"schedule": "paired", "protected_gap_db": [1.0] * 7}, {"schedule": "paired", "protected_gap_db": [1.0] * 7 + [-1.0]},
        {"schedule": "paired", "levels": 0, "protected_gap_db": [1.0]},
        {"captioned": None},
        {"schedule": "full"}, {"stage1_trains": []},
        {"attack_cast_grid": 4}, {"schedule": "paired", "attack_cast_grid": 0},
        {"schedule": "paired", "attack_cast_grid": 2.5},
    ],
)
def test_invalid_settings_are_refused(captioned_dir, bad):
    with pytest.raises((ValueError, TypeError)):
        settings(captioned_dir, **bad)


def test_retrieval_metrics_and_attack_counts():
    from psic.retrieval import attack_counts, recall_at, retrieval_hits

    owner = torch.tensor([0, 0, 1, 1, 2, 2])
    texts = unit([[1, 0, 0], [1, 0.1, 0], [0, 1, 0], [0, 1, 0.1], [0, 0, 1], [0.1, 0, 1]])
    metrics = recall_at(IMAGES, texts, owner, ks=(1,))
    assert metrics["i2t_R@1"] == pytest.approx(200 / 3)  # image 2 prefers image 0's captions
    i2t_hits, _ = retrieval_hits(IMAGES, texts, owner)
    swapped = unit([[0, 1, 0], [1, 0, 0], [0, 0, 1]])
    attacked_i2t, _ = retrieval_hits(swapped, texts, owner)
    assert attack_counts(i2t_hits, attacked_i2t) == (2, 2)  # both pairs the reference gets right are broken
    assert attack_counts(i2t_hits, i2t_hits) == (0, 2)
    assert attack_counts(torch.zeros(3, dtype=torch.bool), attacked_i2t) == (0, 0)


def test_wilson_interval_brackets_the_rate_and_narrows_with_more_pairs():
    from psic.retrieval import wilson_interval

    low, high = wilson_interval(34, 42)
    assert low == pytest.approx(66.7, abs=0.1) and high == pytest.approx(90.0, abs=0.1)
    wide, narrow = wilson_interval(8, 10), wilson_interval(800, 1000)
    assert wide[0] < narrow[0] < 80 < narrow[1] < wide[1]
    assert wilson_interval(0, 5)[0] == pytest.approx(0.0, abs=1e-9) and wilson_interval(5, 5)[1] == pytest.approx(100.0)
    assert all(np.isnan(wilson_interval(0, 0)))


def test_cli_trains_then_exports_a_loadable_model(captioned_dir, tmp_path):
    from click.testing import CliRunner

    import psic
    from psic.cli.main import cli

    config = tmp_path / "settings.json"
    config.write_text(
        '{"N": 8, "M": 12, "cond_hidden": 16, "crop": 64, "batch_size": 4, "val_count": 2, "lambda_clip": 0, '
        '"levels": 0}'
    )
    run_dir = tmp_path / "run"
    args = ["train", "run", "--run-dir", str(run_dir), "--config", str(config), "--steps", "2",
            "--captioned", str(captioned_dir), "--seed", "1"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    weights = tmp_path / "model.safetensors"
    result = CliRunner().invoke(cli, ["train", "export", str(run_dir / "last.pt"), "-o", str(weights),
                                      "--name", "cli-test", "--quality", "2"])
    assert result.exit_code == 0, result.output
    from psic.codec.weights import file_sha256

    assert result.output.strip() == file_sha256(weights)
    again = CliRunner().invoke(cli, ["train", "export", str(run_dir / "last.pt"), "-o", str(weights),
                                     "--name", "other-name", "--quality", "2"])
    assert again.exit_code == 3 and "exists" in again.output
    assert file_sha256(weights) == result.output.strip()
    image = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    assert psic.decode(psic.encode(image, model=str(weights)), model=str(weights)).size == (50, 40)


def test_cli_refuses_to_resume_a_run_under_another_network_in_one_line(captioned_dir, tmp_path):
    from click.testing import CliRunner

    from psic.cli.main import cli

    tiny = '{"N": 8, "M": 12, "cond_hidden": 16, "crop": 64, "batch_size": 4, "val_count": 2, "lambda_clip": 0, '
    one_rate, gain = tmp_path / "one-rate.json", tmp_path / "gain.json"
    one_rate.write_text(tiny + '"levels": 0}')
    gain.write_text(tiny + '"levels": 8}')
    args = ["train", "run", "--run-dir", str(tmp_path / "run"), "--captioned", str(captioned_dir)]
    assert CliRunner().invoke(cli, [*args, "--config", str(one_rate), "--steps", "1"]).exit_code == 0
    result = CliRunner().invoke(cli, [*args, "--config", str(gain), "--steps", "2"])
    assert result.exit_code == 2 and "levels 0 (now 8)" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("content", [b"not a checkpoint", None], ids=["garbage", "foreign-pickle"])
def test_cli_export_of_a_file_that_is_no_checkpoint_fails_in_one_line(tmp_path, content):
    from click.testing import CliRunner

    from psic.cli.main import cli

    source = tmp_path / "last.pt"
    if content is None:
        torch.save({"model": {}}, source)  # a torch file, but not a PSIC checkpoint (no settings)
    else:
        source.write_bytes(content)
    out = tmp_path / "model.safetensors"
    result = CliRunner().invoke(cli, ["train", "export", str(source), "-o", str(out), "--name", "x"])
    assert result.exit_code == 6 and "not a PSIC training checkpoint" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists()
    missing = CliRunner().invoke(cli, ["train", "export", str(tmp_path / "none.pt"), "-o", str(out), "--name", "x"])
    assert missing.exit_code == 6 and "checkpoint not found" in missing.output


def test_cli_refuses_unknown_settings(tmp_path):
    from click.testing import CliRunner

    from psic.cli.main import cli

    config = tmp_path / "settings.json"
    config.write_text('{"lamda": 0.1}')
    result = CliRunner().invoke(cli, ["train", "run", "--run-dir", str(tmp_path / "r"), "--config", str(config)])
    assert result.exit_code == 2
    assert "lamda" in result.output


def test_caption_features_are_cached_for_the_same_target(captioned_dir, tiny_vlp, tmp_path, monkeypatch):
    cache = tmp_path / "text.pt"
    first = Trainer(settings(captioned_dir, text_cache=str(cache)), tmp_path / "a", vlp=tiny_vlp)
    assert cache.exists()

    def refuse(_captions):
        raise AssertionError("features should come from the cache")

    monkeypatch.setattr(tiny_vlp, "encode_text", refuse)
    second = Trainer(settings(captioned_dir, text_cache=str(cache)), tmp_path / "b", vlp=tiny_vlp)
    assert torch.equal(first.text_features, second.text_features)


def test_log_lines_average_both_modes_of_the_alternate_schedule(captioned_dir, tiny_vlp, tmp_path):
    import json

    Trainer(settings(captioned_dir, schedule="alternate", steps=2, log_every=2), tmp_path, vlp=tiny_vlp).fit()
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["step"] == 2
    assert {"psnr_full", "psnr_protected", "bpp", "loss", "seconds"} <= set(record)


def test_jpeg_stand_in_matches_pillows_jpeg_and_passes_gradients():
    import io

    from PIL import Image

    from psic.train.robustness import jpeg

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64]
    smooth = np.stack([xx * 3, yy * 3, (xx + yy) * 1.5], axis=-1) + rng.normal(0, 6, (64, 64, 3))
    image = np.clip(smooth, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=75)
    reference = np.asarray(Image.open(buffer), dtype=np.float64)
    x = (torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255).requires_grad_(True)
    ours = jpeg(x, 75)
    ours.sum().backward()
    ours_pixels = ours[0].permute(1, 2, 0).detach().numpy() * 255
    original = image.astype(np.float64)
    error_vs_pillow = np.mean((ours_pixels - reference) ** 2)
    assert error_vs_pillow < np.mean((reference - original) ** 2) / 2  # closer to Pillow's decode than JPEG is to the input
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_attack_trains_through_the_configured_transforms(captioned_dir, tiny_vlp, tmp_path):
    trainer = Trainer(settings(captioned_dir, attack_transforms=["jpeg75", "half"]), tmp_path, vlp=tiny_vlp)
    record = trainer.train_step()
    assert math.isfinite(record["loss"]) and "attack" in record
    with pytest.raises(ValueError, match="attack_transforms"):
        settings(captioned_dir, attack_transforms=["blur"])


def test_level_gains_train_with_their_own_learning_rate(captioned_dir, tiny_vlp, tmp_path):
    trainer = Trainer(settings(captioned_dir, lr=1e-4, gain_lr=5e-3), tmp_path, vlp=tiny_vlp)
    main, gains = trainer.optimizer.param_groups
    assert main["lr"] == 1e-4 and gains["lr"] == 5e-3
    assert {id(p) for p in gains["params"]} == {id(p) for p in trainer.model.gains.parameters()}
    one_rate = Trainer(settings(captioned_dir, levels=0), tmp_path / "one-rate", vlp=tiny_vlp)
    assert len(one_rate.optimizer.param_groups) == 1


def test_paired_schedule_decodes_every_image_in_both_modes(captioned_dir, tiny_vlp, tmp_path, monkeypatch):
    trainer = Trainer(settings(captioned_dir, schedule="paired", level_trigger=True), tmp_path, vlp=tiny_vlp)
    seen = {}

    def spy(batch, beta, level):
        seen.update(batch=batch, beta=beta, level=level)
        return {}

    monkeypatch.setattr(trainer, "optimize", spy)
    trainer.train_step()
    full, protected = seen["batch"].images.chunk(2)
    assert torch.equal(full, protected)
    assert torch.equal(*seen["batch"].caption_index.chunk(2))
    assert seen["beta"].tolist() == [0.0] * 4 + [1.0] * 4
    assert torch.equal(*seen["level"].chunk(2))


def test_protected_decodes_far_below_full_pay_the_gap_penalty_in_db_at_every_level(captioned_dir, tiny_vlp, tmp_path):
    trainer = Trainer(
        settings(captioned_dir, schedule="paired", protected_gap_db=1.0, gap_weight=10.0), tmp_path, vlp=tiny_vlp
    )
    beta = torch.tensor([0.0, 0.0, 1.0, 1.0])
    within = torch.tensor([0.001, 0.002, 0.00125, 0.0025])  # protected 0.97 dB below full: no penalty
    assert trainer._gap_penalty(within, beta, 1.0).item() == 0.0
    # a low-quality and a high-quality pair, each protected 3 dB below its full decode
    beyond = torch.tensor([0.004, 0.0002, 0.004 * 10**0.3, 0.0002 * 10**0.3], requires_grad=True)
    penalty = trainer._gap_penalty(beyond, beta, 1.0)
    assert penalty.item() == pytest.approx(10.0 * 2 * (3.0 - 1.0) / 4, rel=1e-5)
    penalty.backward()
    assert beyond.grad[:2].abs().sum() == 0  # the full decode is the reference, not pushed down
    # equal dB excess, equal pull in dB: the gradient scales as 1 / MSE, so d(penalty)/d(dB) matches
    assert (beyond.grad[2] * beyond[2]).item() == pytest.approx((beyond.grad[3] * beyond[3]).item(), rel=1e-5)
    with pytest.raises(ValueError, match="paired"):
        trainer._gap_penalty(within, torch.tensor([0.0, 1.0, 0.0, 1.0]), 1.0)


def test_a_per_level_gap_allowance_spares_the_levels_allowed_more(captioned_dir, tiny_vlp, tmp_path):
    allowance = [1.0] * 7 + [4.0]
    trainer = Trainer(
        settings(captioned_dir, schedule="paired", protected_gap_db=allowance, gap_weight=10.0), tmp_path, vlp=tiny_vlp
    )
    beta, level = torch.tensor([0.0, 0.0, 1.0, 1.0]), torch.tensor([0, 7, 0, 7])
    # both pairs' protected decodes 3 dB below full: quality 1 is allowed 1 dB, quality 8 is allowed 4
    beyond = torch.tensor([0.004, 0.0002, 0.004 * 10**0.3, 0.0002 * 10**0.3])
    penalty = trainer._gap_penalty(beyond, beta, trainer._gap_allowance(level))
    assert penalty.item() == pytest.approx(10.0 * (3.0 - 1.0) / 4, rel=1e-5)
    assert trainer._gap_allowance(torch.tensor([7, 0])).tolist() == [4.0, 1.0]


def test_the_gap_penalty_enters_the_loss_of_a_paired_batch(captioned_dir, tiny_vlp, tmp_path, monkeypatch):
    trainer = Trainer(settings(captioned_dir, schedule="paired", protected_gap_db=1.0), tmp_path, vlp=tiny_vlp)
    batch = Batch(trainer._batch().images.repeat(2, 1, 1, 1), torch.full((8,), -1))
    beta, level = torch.tensor([0.0] * 4 + [1.0] * 4), torch.tensor([0, 3, 5, 7] * 2)
    calls = []

    def penalty(value):
        def fake(mse, beta_, gap_db):
            calls.append((beta_.tolist(), gap_db))
            return torch.tensor(value)

        return fake

    monkeypatch.setattr(trainer, "_gap_penalty", penalty(0.0))
    without = loss_with_seed(trainer, batch, beta, level)
    monkeypatch.setattr(trainer, "_gap_penalty", penalty(7.0))
    assert loss_with_seed(trainer, batch, beta, level) == pytest.approx(without + 7.0, rel=1e-6)
    assert calls == [(beta.tolist(), 1.0)] * 2


def test_the_attack_view_without_cast_drops_coarse_differences_and_keeps_fine_ones():
    full = torch.rand(2, 3, 32, 32).requires_grad_()
    stripes = (torch.arange(32) % 2).float().view(1, 1, 1, 32).expand(2, 3, 32, 32) * 0.1
    tint = torch.tensor([0.2, -0.1, 0.05]).view(1, 3, 1, 1)
    protected = (full.detach() + tint + stripes).requires_grad_()
    view = Trainer._without_cast(torch.cat([full, protected]), grid=1)
    assert torch.equal(view[:2], full.detach())
    # the tint is gone; the fine stripes stay, less their own mean
    assert torch.allclose(view[2:], full + stripes - 0.05, atol=1e-6)
    view[2:].sum().backward()  # a uniform push on the view reaches the protected decode as no push at all
    assert protected.grad.abs().max() < 1e-6
    assert not full.grad.any()  # the attack never moves the full decode


@pytest.mark.parametrize("grid", [1, 2])
def test_a_finer_cast_grid_removes_coarser_casts(grid):
    from psic.train.robustness import without_cast

    reference = torch.rand(1, 3, 32, 32)
    halves = torch.cat([torch.full((16,), 0.2), torch.full((16,), -0.2)]).view(1, 1, 1, 32)  # left warm, right cold
    view = without_cast(reference + halves, reference, grid)
    left = (view - reference).pow(2).mean().sqrt() / halves.pow(2).mean().sqrt()
    if grid == 1:  # its mean is zero: the mean colour alone does not see it
        assert left == pytest.approx(1.0, abs=1e-5)
    else:  # a 2 x 2 grid takes the two halves' means away, up to the bilinear spreading between them
        assert left < 0.5


def test_the_attack_of_a_cast_free_run_sees_the_view_without_cast(captioned_dir, tiny_vlp, tmp_path, monkeypatch):
    trainer = Trainer(
        settings(captioned_dir, schedule="paired", attack_cast_grid=2, lambda_clip=1.0), tmp_path, vlp=tiny_vlp
    )
    seen = []
    real = trainer._attack

    def spy(protected_images, *args):
        seen.append(protected_images.detach())
        return real(protected_images, *args)

    monkeypatch.setattr(trainer, "_attack", spy)
    batch = trainer._batch()
    paired = Batch(batch.images.repeat(2, 1, 1, 1), batch.caption_index.repeat(2))
    beta, level = torch.tensor([0.0] * 4 + [1.0] * 4), torch.tensor([0, 3, 5, 7] * 2)
    torch.manual_seed(3)
    trainer.losses(paired, beta, level)
    torch.manual_seed(3)
    x_hat = trainer.network(paired.images, beta, level)["x_hat"].float().clamp(0, 1).detach()
    expected = Trainer._without_cast(x_hat, 2)[4:][paired.caption_index[4:] >= 0]
    assert len(seen) == 1 and torch.allclose(seen[0], expected, atol=1e-5)
    assert not torch.allclose(seen[0], x_hat[4:][paired.caption_index[4:] >= 0], atol=1e-5)


def test_a_paired_level_trigger_run_exports_its_trigger(captioned_dir, tiny_vlp, tmp_path):
    from psic.train.checkpoint import model_from_file

    settings_ = settings(captioned_dir, schedule="paired", protected_gap_db=0.0, level_trigger=True, steps=1)
    trainer = Trainer(settings_, tmp_path, vlp=tiny_vlp)
    trainer.fit()
    trained = trainer.model.g_s.condition.level_embedding
    assert trained.abs().sum() > 0
    exported = model_from_file(tmp_path / "last.pt")
    assert exported.arch.level_trigger and torch.equal(exported.g_s.condition.level_embedding, trained.detach())
    with pytest.raises(ValueError, match="this architecture lacks"):  # a level-blind run would drop the trigger
        Trainer(settings(captioned_dir, init=str(tmp_path / "last.pt")), tmp_path / "blind", vlp=tiny_vlp)


def test_a_retune_grows_trigger_branches_from_a_run_without_them(captioned_dir, tiny_vlp, tmp_path):
    from psic.train.checkpoint import model_from_file

    Trainer(settings(captioned_dir, steps=1, level_trigger=True), tmp_path / "s1", vlp=tiny_vlp).fit()
    retune = settings(
        captioned_dir, stage=2, steps=2, schedule="paired", level_trigger=True, trigger_branches=2,
        init=str(tmp_path / "s1" / "last.pt"), stage2_trains=["g_s.condition."],
    )
    trainer = Trainer(retune, tmp_path / "s2", vlp=tiny_vlp)
    assert all(gate.weight.abs().sum() == 0 for gate in trainer.model.g_s.condition.gates)  # starts as the source
    trainer.fit()
    assert all(gate.weight.abs().sum() > 0 for gate in trainer.model.g_s.condition.gates)
    exported = model_from_file(tmp_path / "s2" / "last.pt")
    assert exported.arch.trigger_branches == 2
    with pytest.raises(ValueError, match="this architecture lacks"):  # a run without branches would drop them
        Trainer(settings(captioned_dir, level_trigger=True, init=str(tmp_path / "s2" / "last.pt")), tmp_path / "s3", vlp=tiny_vlp)


@pytest.mark.parametrize("crop_area", [None, (0.35, 1.0)])
def test_surrogate_training_crops_stay_inside_the_image_and_cover_the_asked_area(crop_area):
    from psic.train.surrogate import _augment, _crop_box

    rng = np.random.default_rng(0)
    for _ in range(200):
        top, left, height, width = _crop_box(128, 112, rng, crop_area)
        assert 0 <= top <= 128 - height and 0 <= left <= 128 - width
        if crop_area is None:
            assert (height, width) == (112, 112)
        else:  # rounding and the 128-pixel bound move the share by a few per cent at most
            assert crop_area[0] - 0.02 <= height * width / 128**2 <= crop_area[1] + 0.02
    images = np.random.default_rng(1).integers(0, 256, size=(3, 128, 128, 3), dtype=np.uint8)
    crops = _augment(images, 112, rng, crop_area)
    assert crops.shape == (3, 3, 112, 112) and 0.0 <= crops.min() and crops.max() <= 1.0
