#!/usr/bin/env bash
# A stage-1 segment, then a CLTG retune from it, in one call on a lent GPU machine
# (docs/training.md, "On a GPU"); carry runs/pack.npz and .whl as for gpu_segment.sh.
# STAGE1_MINUTES (default 5.5) and RETUNE_MINUTES (1.5) split the call; STAGE1_SET is one override
# of the stage 1 (e.g. lr=6e-4), STAGE1_NOTE is kept in its record, STAGE1_DEVICE=cpu makes a dry
# run; arguments pass on to the retune (e.g. --set ..., --note ...). The segments come back in
# $OUT/stage1 and $OUT/retune: adopt them here in that order with psic train adopt.
set -euo pipefail
rm -rf /tmp/segment  # a fresh pair: a retune left on a warm machine would block the stage 1
MINUTES=${STAGE1_MINUTES:-5.5} bash training/gpu_segment.sh --stage1-only ${STAGE1_NOTE:+--note "$STAGE1_NOTE"} \
    ${STAGE1_SET:+--set "$STAGE1_SET"} ${STAGE1_DEVICE:+--device "$STAGE1_DEVICE"}
mv "$OUT/segment" "$OUT/stage1"
# Adopted in this machine's copy only, so that the retune starts from it.
PYTHONPATH=/tmp/site:$PWD python3 -m psic.cli.main train adopt /tmp/segment
rm -rf /tmp/segment
MINUTES=${RETUNE_MINUTES:-1.5} bash training/gpu_segment.sh --stage2-only "$@"
mv "$OUT/segment" "$OUT/retune"
