"""The training chain: a segment trains both stages from the chain's weights, exports, and is adopted."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

import pytest
import torch
from conftest import save_tiny_model

from psic.codec.weights import load_weights_file
from psic.train.chain import ChainPlan, adopt_segment, run_segment
from psic.train.checkpoint import architecture_of

TINY = {"N": 8, "M": 12, "cond_hidden": 16, "crop": 64, "batch_size": 4, "folder_batch": 0, "val_count": 2,
        "log_every": 1, "save_every": 1000, "lr": 1e-3}


@pytest.fixture
def chain(tmp_path, tiny_vlp, monkeypatch):
    monkeypatch.setattr("psic.vlp.load_vlp", lambda spec, *, device, weights=None: tiny_vlp)
    save_tiny_model(tmp_path / "start.safetensors")
    for stage in (1, 2):
        (tmp_path / f"stage{stage}.json").write_text(json.dumps({**TINY, "lambda_clip": 0.5, "levels": 8}))
    plan = {"model": "tiny-vr", "weights": str(tmp_path / "tiny-vr.safetensors"), "start": str(tmp_path / "start.safetensors"),
            "stage1": "stage1.json", "stage2": "stage2.json", "stage2_share": 0.5}
    (tmp_path / "chain.json").write_text(json.dumps(plan))
    registry = {"default": "tiny-vr", "models": [{"name": "tiny-vr", "sha256": "0" * 64}]}
    (tmp_path / "registry.json").write_text(json.dumps(registry))
    return tmp_path


def test_a_segment_trains_both_stages_exports_and_is_adopted(chain, captioned_dir):
    import psic

    record = run_segment(chain / "chain.json", chain / "seg", 0.02, {"captioned": str(captioned_dir)})
    assert record["segment"] == 1 and record["stage1"]["steps"] >= 1 and record["stage2"]["steps"] >= 1
    sha = adopt_segment(chain / "chain.json", chain / "seg", chain / "registry.json")["sha256"]
    assert json.loads((chain / "registry.json").read_text())["models"][0]["sha256"] == sha
    log = (chain / "segments.jsonl").read_text().splitlines()
    assert [json.loads(line)["sha256"] for line in log] == [sha]
    weights = str(chain / "tiny-vr.safetensors")
    image = psic.decode(psic.encode(captioned_dir / "images" / "img00.jpg", model=weights, quality=6), model=weights)
    assert image.size == (80, 80)


def test_a_rerun_resumes_and_more_minutes_extend_only_stage_two(chain, captioned_dir):
    first = run_segment(chain / "chain.json", chain / "seg", 0.02, {"captioned": str(captioned_dir)})
    again = run_segment(chain / "chain.json", chain / "seg", 0.02, {"captioned": str(captioned_dir)})
    assert again["stage1"]["steps"] == first["stage1"]["steps"]
    assert again["stage2"]["steps"] == first["stage2"]["steps"]  # the budget was already spent
    # twice the seconds stage 2 already used, plus 1.8 s: extends it however slow a step is on this machine
    minutes = 0.06 + 2 * first["stage2"]["seconds"] / 60 / 0.5
    longer = run_segment(chain / "chain.json", chain / "seg", minutes, {"captioned": str(captioned_dir)})
    assert longer["stage1"]["steps"] == first["stage1"]["steps"]
    assert longer["stage2"]["steps"] > first["stage2"]["steps"]


def test_adopting_a_segment_whose_weights_changed_is_refused(chain, captioned_dir):
    run_segment(chain / "chain.json", chain / "seg", 0.02, {"captioned": str(captioned_dir)})
    (chain / "seg" / "tiny-vr.safetensors").write_bytes(b"not the exported weights")
    with pytest.raises(ValueError, match="does not match"):
        adopt_segment(chain / "chain.json", chain / "seg", chain / "registry.json")


def _adopt_first_segment_then_name(chain, data: dict, key: str, settings: dict):
    """Ship a first two-stage segment, then give the chain a settings file under ``key``; the shipped weights' path."""
    run_segment(chain / "chain.json", chain / "seg", 0.02, data)
    adopt_segment(chain / "chain.json", chain / "seg", chain / "registry.json")
    plan = json.loads((chain / "chain.json").read_text())
    (chain / "chain.json").write_text(json.dumps({**plan, key: f"{key}.json"}))
    (chain / f"{key}.json").write_text(json.dumps(settings))
    return chain / "tiny-vr.safetensors"


def test_a_stage_two_only_segment_retunes_the_trigger_alone(chain, captioned_dir):
    from safetensors.torch import load_file

    data = {"captioned": str(captioned_dir)}
    retune = {**TINY, "lambda_clip": 0.5, "levels": 8, "stage2_trains": ["g_s.condition."]}
    shipped = _adopt_first_segment_then_name(chain, data, "retune", retune)
    before = load_file(shipped)
    started_from = hashlib.sha256(shipped.read_bytes()).hexdigest()[:8]
    record = run_segment(chain / "chain.json", chain / "tune", 0.02, data, kind="stage-2-only", notes="a test")
    assert "stage1" not in record and record["stage2"]["steps"] >= 1
    assert record["segment"] == 2 and record["notes"] == "a test" and record["started_from"] == started_from
    adopt_segment(chain / "chain.json", chain / "tune", chain / "registry.json")
    after = load_file(shipped)
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert any(name.startswith("g_s.condition.") for name in changed)
    # the encoder, the gains and the decoder outside CLTG stay; export refits the z tables from them
    assert all(name.startswith(("g_s.condition.", "entropy_bottleneck.", "integer_h_s.")) for name in changed)


def test_a_settings_file_given_for_a_segment_replaces_the_chains(chain, captioned_dir):
    from safetensors.torch import load_file

    data = {"captioned": str(captioned_dir)}
    retune = {**TINY, "lambda_clip": 0.5, "levels": 8, "stage2_trains": ["g_s.condition."]}
    shipped = _adopt_first_segment_then_name(chain, data, "retune", retune)
    before = load_file(shipped)
    whole_decoder = chain / "stage2.json"  # no stage2_trains: the decoder and the CLTG
    with pytest.raises(ValueError, match="one-stage segment"):
        run_segment(chain / "chain.json", chain / "both", 0.02, data, settings=str(whole_decoder))
    record = run_segment(chain / "chain.json", chain / "dec", 0.02, data, kind="stage-2-only", settings=str(whole_decoder))
    assert record["settings"] == str(whole_decoder)
    with pytest.raises(ValueError, match="begun with the settings"):
        run_segment(chain / "chain.json", chain / "dec", 0.02, data, kind="stage-2-only", settings=str(chain / "retune.json"))
    adopt_segment(chain / "chain.json", chain / "dec", chain / "registry.json")
    after = load_file(shipped)
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert any(name.startswith("g_s.") and not name.startswith("g_s.condition.") for name in changed)
    assert not any(name.startswith(("g_a.", "h_a.")) for name in changed)


def test_a_segment_folder_keeps_its_kind_number_and_note(chain, captioned_dir):
    data = {"captioned": str(captioned_dir)}
    run_segment(chain / "chain.json", chain / "seg", 0.02, data)
    with pytest.raises(ValueError, match="holds a two-stage segment"):
        run_segment(chain / "chain.json", chain / "seg", 0.02, data, kind="stage-2-only")
    adopt_segment(chain / "chain.json", chain / "seg", chain / "registry.json")
    first = run_segment(chain / "chain.json", chain / "tune", 0.02, data, kind="stage-2-only", notes="why")
    with pytest.raises(ValueError, match="holds a stage-2-only segment"):
        run_segment(chain / "chain.json", chain / "tune", 0.02, data)
    adopt_segment(chain / "chain.json", chain / "tune", chain / "registry.json")
    again = run_segment(chain / "chain.json", chain / "tune", 0.02, data, kind="stage-2-only")  # after its adoption
    assert (again["segment"], again["started_from"], again["notes"]) == (2, first["started_from"], "why")
    assert again["kind"] == "stage-2-only" and again["stage2"]["steps"] == first["stage2"]["steps"]


def test_a_seed_given_to_a_segment_replaces_its_own(chain, captioned_dir):
    data = {"captioned": str(captioned_dir)}
    run_segment(chain / "chain.json", chain / "own", 0.02, data)
    run_segment(chain / "chain.json", chain / "other", 0.02, {**data, "seed": 500})
    seeds = {folder: [json.loads((chain / folder / f"stage{s}" / "settings.json").read_text())["seed"] for s in (1, 2)]
             for folder in ("own", "other")}
    assert seeds == {"own": [1001, 1002], "other": [501, 502]}
    with pytest.raises(TypeError, match="seed must be an int"):
        run_segment(chain / "chain.json", chain / "third", 0.02, {**data, "seed": "5"})


@pytest.mark.parametrize("key", ["stage", "device", "max_minutes", "init"])
def test_a_segment_refuses_overrides_of_what_it_sets_itself(chain, captioned_dir, key):
    with pytest.raises(ValueError, match=f"sets {key} itself"):
        run_segment(chain / "chain.json", chain / "seg", 0.02, {"captioned": str(captioned_dir), key: 1})
    assert not (chain / "seg").exists()


def test_a_folder_of_an_older_release_keeps_its_kind(chain, captioned_dir):
    data = {"captioned": str(captioned_dir)}
    run_segment(chain / "chain.json", chain / "seg", 0.02, data)
    adopt_segment(chain / "chain.json", chain / "seg", chain / "registry.json")
    first = run_segment(chain / "chain.json", chain / "tune", 0.02, data, kind="stage-2-only")
    start = json.loads((chain / "tune" / "start.json").read_text())
    del start["kind"]
    (chain / "tune" / "start.json").write_text(json.dumps({**start, "stage2_only": True}))  # as written before kinds
    with pytest.raises(ValueError, match="holds a stage-2-only segment"):
        run_segment(chain / "chain.json", chain / "tune", 0.02, data)
    again = run_segment(chain / "chain.json", chain / "tune", 0.02, data, kind="stage-2-only")
    assert again["kind"] == "stage-2-only" and again["stage2"]["steps"] == first["stage2"]["steps"]


def test_a_stage_two_only_segment_needs_trained_weights(chain, captioned_dir):
    with pytest.raises(ValueError, match="does not exist yet"):
        run_segment(chain / "chain.json", chain / "tune", 0.02, {"captioned": str(captioned_dir)}, kind="stage-2-only")


ALL_BUT_THE_TRIGGER = ("g_a.", "h_a.", "h_s.", "entropy_bottleneck.", "gains.", "g_s.deconvs.", "g_s.igdns.")


def test_a_stage_one_only_segment_trains_the_codec_and_holds_the_trigger(chain, captioned_dir):
    from safetensors.torch import load_file

    data = {"captioned": str(captioned_dir)}
    held = {**TINY, "stage": 1, "levels": 8, "schedule": "full", "lambda_clip": 0.0,
            "stage1_trains": list(ALL_BUT_THE_TRIGGER)}
    shipped = _adopt_first_segment_then_name(chain, data, "stage1", held)
    before = load_file(shipped)
    record = run_segment(chain / "chain.json", chain / "rd", 0.02, data, kind="stage-1-only")
    assert record["kind"] == "stage-1-only" and "stage2" not in record and record["stage1"]["steps"] >= 1
    adopt_segment(chain / "chain.json", chain / "rd", chain / "registry.json")
    after = load_file(shipped)
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert any(name.startswith("g_s.deconvs.") for name in changed) and "gains.log_inverse_gain" in changed
    assert not any(name.startswith("g_s.condition.") for name in changed)  # the trigger as shipped


ENCODER_SIDE = ("g_a.", "h_a.", "h_s.", "entropy_bottleneck.", "gains.log_gain")


def test_an_encoder_only_segment_leaves_the_decoder_as_shipped(chain, captioned_dir):
    from safetensors.torch import load_file

    data = {"captioned": str(captioned_dir)}
    encoder = {**TINY, "stage": 1, "levels": 8, "schedule": "full", "lambda_clip": 0.0, "stage1_trains": list(ENCODER_SIDE)}
    shipped = _adopt_first_segment_then_name(chain, data, "encoder", encoder)
    before = load_file(shipped)
    record = run_segment(chain / "chain.json", chain / "enc", 0.02, data, kind="encoder-only")
    assert record["kind"] == "encoder-only" and "stage2" not in record and record["stage1"]["steps"] >= 1
    assert "psnr_protected" not in record["stage1"]["last_log"]  # the full decode alone is trained
    adopt_segment(chain / "chain.json", chain / "enc", chain / "registry.json")
    after = load_file(shipped)
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert any(name.startswith("g_a.") for name in changed) and "gains.log_gain" in changed
    # integer_h_s is export's fixed-point copy of h_s; the decoder and its inverse gains stay bit for bit
    assert all(name.startswith((*ENCODER_SIDE, "integer_h_s.")) for name in changed)


def test_an_encoder_only_segment_needs_its_settings_file(chain, captioned_dir):
    run_segment(chain / "chain.json", chain / "seg", 0.02, {"captioned": str(captioned_dir)})
    adopt_segment(chain / "chain.json", chain / "seg", chain / "registry.json")
    with pytest.raises(ValueError, match="encoder-only segments"):
        run_segment(chain / "chain.json", chain / "enc", 0.02, {"captioned": str(captioned_dir)}, kind="encoder-only")


@pytest.mark.parametrize(("stage", "kind"), [(1, "two-stage"), (2, "two-stage"), (1, "stage-1-only"), (2, "stage-2-only"),
                                           (1, "encoder-only")])
def test_the_shipped_chain_settings_are_valid(stage, kind):
    from pathlib import Path

    from psic.train.trainer import TrainSettings

    chain_file = Path(__file__).parents[1] / "training" / "chain.json"
    plan = ChainPlan.read(chain_file)
    values = plan.stage_settings(chain_file, stage, kind=kind)
    settings = TrainSettings(**values, captioned="flickr8k", max_minutes=60)  # the data a segment adds
    assert settings.stage == stage
    shipped_arch = load_weights_file(chain_file.parent.parent / plan.weights, None, "cpu").arch
    assert architecture_of(asdict(settings)) == shipped_arch  # the next segment starts from the shipped network
    if stage == 1 and kind != "encoder-only":  # stage 1 holds the trigger: a mixed stage 1 trained it away
        assert settings.schedule == "full" and settings.stage1_trains
        assert not any(prefix.startswith("g_s.condition") or "g_s.".startswith(prefix) for prefix in settings.stage1_trains)
    if kind == "stage-2-only":  # a retune trains the CLTG alone, from its own settings file
        assert plan.retune and settings.stage2_trains == ["g_s.condition."]
    if kind == "encoder-only":  # the decoder as shipped: its pixels, trigger and inverse gains untouched
        from safetensors.torch import load_file

        assert settings.schedule == "full" and settings.stage1_trains
        shipped = load_file(chain_file.parent.parent / plan.weights)
        trained = [name for name in shipped if name.startswith(tuple(settings.stage1_trains))]
        assert any(name.startswith("g_a.") for name in trained) and "gains.log_gain" in trained
        assert not any(name.startswith(("g_s.", "gains.log_inverse_gain")) for name in trained)
