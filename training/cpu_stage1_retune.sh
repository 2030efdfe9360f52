#!/usr/bin/env bash
# The chain's next step on a CPU (docs/training.md, "The chain"): a stage-1 segment on the image
# folders, then a CLTG retune from its export, in one background job of a working session.
# DATA (default ../shared/data) holds flickr8k/ and cid22/train/; RUN (default runs/next) gets
# RUN/stage1 and RUN/retune; STAGE1_MINUTES (65) and RETUNE_MINUTES (30) split the time; arguments
# pass on to the retune (e.g. --set ...). Evaluate RUN/retune/psic-vr.safetensors with psic eval rd
# and psic eval privacy, then adopt RUN/retune alone: its record names the stage 1 in its note.
set -euo pipefail
data=${DATA:-../shared/data}
run=${RUN:-runs/next}
stage1_minutes=${STAGE1_MINUTES:-65}
psic train segment --stage1-only --out "$run/stage1" --minutes "$stage1_minutes" \
    --captioned "$data/flickr8k" --folder "$data/cid22/train"
psic train segment --stage2-only --init "$run/stage1/psic-vr.safetensors" --out "$run/retune" \
    --minutes "${RETUNE_MINUTES:-30}" --captioned "$data/flickr8k" --folder "$data/cid22/train" \
    --text-cache runs/text-features.pt \
    --note "CLTG retune from $run/stage1: $stage1_minutes min of stage 1 on the image folders from the shipped weights" "$@"
