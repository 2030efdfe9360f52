"""The training chain: a segment trains both stages from the chain's weights, exports, and is adopted."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from conftest import save_tiny_model

from psic.train.chain import ChainPlan, adopt_segment, run_segment

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


def test_a_stage_two_only_segment_retunes_the_trigger_alone(chain, captioned_dir):
    from safetensors.torch import load_file

    data = {"captioned": str(captioned_dir)}
    run_segment(chain / "chain.json", chain / "seg", 0.02, data)
    adopt_segment(chain / "chain.json", chain / "seg", chain / "registry.json")
    shipped = chain / "tiny-vr.safetensors"
    before = load_file(shipped)
    started_from = hashlib.sha256(shipped.read_bytes()).hexdigest()[:8]
    plan = json.loads((chain / "chain.json").read_text())
    (chain / "chain.json").write_text(json.dumps({**plan, "retune": "retune.json"}))
    retune = {**TINY, "lambda_clip": 0.5, "levels": 8, "stage2_trains": ["g_s.condition."]}
    (chain / "retune.json").write_text(json.dumps(retune))
    record = run_segment(chain / "chain.json", chain / "tune", 0.02, data, stage2_only=True, notes="a test")
    assert "stage1" not in record and record["stage2"]["steps"] >= 1
    assert record["segment"] == 2 and record["notes"] == "a test" and record["started_from"] == started_from
    adopt_segment(chain / "chain.json", chain / "tune", chain / "registry.json")
    after = load_file(shipped)
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert any(name.startswith("g_s.condition.") for name in changed)
    # the encoder, the gains and the decoder outside CLTG stay; export refits the z tables from them
    assert all(name.startswith(("g_s.condition.", "entropy_bottleneck.", "integer_h_s.")) for name in changed)


def test_a_segment_folder_keeps_its_kind_number_and_note(chain, captioned_dir):
    data = {"captioned": str(captioned_dir)}
    run_segment(chain / "chain.json", chain / "seg", 0.02, data)
    with pytest.raises(ValueError, match="holds a two-stage segment"):
        run_segment(chain / "chain.json", chain / "seg", 0.02, data, stage2_only=True)
    adopt_segment(chain / "chain.json", chain / "seg", chain / "registry.json")
    first = run_segment(chain / "chain.json", chain / "tune", 0.02, data, stage2_only=True, notes="why")
    with pytest.raises(ValueError, match="holds a stage-2-only segment"):
        run_segment(chain / "chain.json", chain / "tune", 0.02, data)
    adopt_segment(chain / "chain.json", chain / "tune", chain / "registry.json")
    again = run_segment(chain / "chain.json", chain / "tune", 0.02, data, stage2_only=True)  # after its adoption
    assert (again["segment"], again["started_from"], again["notes"]) == (2, first["started_from"], "why")
    assert again["kind"] == "stage-2-only" and again["stage2"]["steps"] == first["stage2"]["steps"]


def test_a_stage_two_only_segment_needs_trained_weights(chain, captioned_dir):
    with pytest.raises(ValueError, match="does not exist yet"):
        run_segment(chain / "chain.json", chain / "tune", 0.02, {"captioned": str(captioned_dir)}, stage2_only=True)


@pytest.mark.parametrize(("stage", "stage2_only"), [(1, False), (2, False), (2, True)])
def test_the_shipped_chain_settings_are_valid(stage, stage2_only):
    from pathlib import Path

    from psic.train.trainer import TrainSettings

    chain_file = Path(__file__).parents[1] / "training" / "chain.json"
    plan = ChainPlan.read(chain_file)
    values = plan.stage_settings(chain_file, stage, stage2_only=stage2_only)
    settings = TrainSettings(**values, captioned="flickr8k", max_minutes=60)  # the data a segment adds
    assert settings.stage == stage
    if stage2_only:  # a retune trains the CLTG alone, from its own settings file
        assert plan.retune and settings.stage2_trains == ["g_s.condition."]
