#!/usr/bin/env bash
# One training-chain segment on a lent GPU machine (docs/training.md, "On a GPU").
# Run from the repository root there, with the data pack at runs/pack.npz and the wheels the
# machine lacks in .whl/ (both carried). Writes the segment's weights, record and logs to $OUT;
# adopt them here with: psic train adopt DIR (DIR holding those files).
set -euo pipefail
minutes=${MINUTES:-8}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 PSIC_NO_PROGRESS=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -m psic.cli.main train segment --out /tmp/segment --minutes "$minutes" --pack runs/pack.npz --device cuda \
    --set batch_size=48 --set folder_batch=16 --set crop=128 --set channels_last=true --set log_every=100 --set save_every=2000 "$@"
mkdir -p "$OUT/segment"
cp /tmp/segment/psic-vr.safetensors /tmp/segment/segment.json "$OUT/segment/"
for stage in 1 2; do  # a --stage2-only segment has no stage 1, an --encoder-only one no stage 2
    if [ -f /tmp/segment/stage$stage/log.jsonl ]; then
        cp /tmp/segment/stage$stage/log.jsonl "$OUT/segment/stage$stage-log.jsonl"
    fi
done
