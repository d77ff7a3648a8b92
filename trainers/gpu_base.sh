#!/usr/bin/env bash
# On one lent GPU, in a single call of ≤ 9 minutes: continue the shipped wan-tiny (H8, trainers/README.md,
# thirteenth session) with its own recipe at batch 256, rebuild pyramidal-wan-tiny on it with build_zoo step
# 3's recipe, after timing the real Wan2.1-1.3B (bench.realsize) there.
#
# Both trainings fit their cosine schedules to the time they get (fit_to_time: the step rate is measured
# over steps 20-120, then max_steps is set so that the schedule ends as the time runs out). The text encoder
# is frozen (train_text_encoder=false), so the zoo's other variants, which share it, stay consistent.
#
# The GPU machine's python3 has torch, accelerate, transformers, safetensors, numpy, imageio, pillow, pyyaml
# and tqdm but not diffusers or pywt: carry their wheels (10.8 MB), fetched here once with
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl diffusers==0.42.1 PyWavelets==1.9.0
# imageio-ffmpeg (imported by engine/video.py) is not carried: its wheel holds ffmpeg (68 MB, over the 64 MiB a
# call carries) and training writes no mp4, so an empty stand-in module takes its place there.
# Back in $OUT (8 files): gpu-base.tar (wan-tiny/, pyramidal-wan-tiny/ and runs/{base,pyr}/config.json),
# base-log.csv, base-curves.csv, pyr-log.csv, pyr-curves.csv, realsize.json, realsize.log, gpu-base.log.
# A zoo from it: mkdir -p Z && cp -r assets/zoo/shared Z/ && tar -xf gpu-base.tar -C Z  (then Z/wan-tiny)
# Device tool: command `TOTAL_SECONDS=570 bash trainers/gpu_base.sh`, carry [".whl"], timeout_s 600.
# CPU smoke test (a few minutes; both runs fit their schedules at step 120): OUT=/tmp/gpu-smoke \
#   PY=.venv/bin/python STEPS=150 BATCH=2 PYR_STEPS=150 PYR_BATCH=3 PYR_SECONDS=60 PYR_EVAL=0 CACHE_CLIPS=64 \
#   EVAL_EVERY=0 CACHE=/tmp/gpu-smoke-cache.pt WORK=/tmp/gpu-smoke-work NPROC=2 TOTAL_SECONDS=420 WHEELS= \
#   REALSIZE="--shrink --device cpu" bash trainers/gpu_base.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1 HF_HUB_OFFLINE=1  # no progress bar: log.csv has the progress
: "${OUT:?OUT must name the folder whose files come back}"
mkdir -p "$OUT" && exec > >(tee "$OUT/gpu-base.log") 2>&1
DEADLINE=$(($(date +%s) + ${TOTAL_SECONDS:-540}))
PY=${PY:-python3}
# STEPS only spans the schedule until fit_to_time replaces it (a run shorter than 120 steps keeps it)
STEPS=${STEPS:-3000} BATCH=${BATCH:-256} LR=${LR:-4e-4} EVAL_EVERY=${EVAL_EVERY:-800}
PYR_BATCH=${PYR_BATCH:-128} PYR_SECONDS=${PYR_SECONDS:-70} PYR_STEPS=${PYR_STEPS:-2400}  # the pyramid's
PYR_EVAL=${PYR_EVAL:-1000000}  # share of the call, its steps until fit_to_time, its curve (default: the end)
CACHE_CLIPS=${CACHE_CLIPS:-12000} CACHE=${CACHE:-runs/cache/gpu-train-17x128x128.pt}
NPROC=${NPROC:-$(($(nproc) - 2))} WORK=${WORK:-/tmp/gpu-base} SITE=/tmp/site
REALSIZE=${REALSIZE:---device cuda --frames 81 --height 448 --width 832}
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv
WHEELS=${WHEELS-.whl}  # empty: none installed (the smoke test, whose python has them)
if [ -n "$WHEELS" ] && compgen -G "$WHEELS/*.whl" > /dev/null; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $SITE "$WHEELS"/*.whl
fi
export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
$PY -c "import imageio_ffmpeg" 2> /dev/null \
    || { mkdir -p $SITE && echo '"""Stand-in: no mp4 input or output on this machine."""' > $SITE/imageio_ffmpeg.py; }
$PY -c "import torch, transformers, accelerate, diffusers; print('torch', torch.__version__, 'transformers',
transformers.__version__, 'accelerate', accelerate.__version__, 'diffusers', diffusers.__version__)"
START=assets/zoo  # H8's recipe (the rest of the command is below)
KNOBS="sigma_shift=8 temporal_weight=4 attribute_weight=1.5 align_weight=0.5 align_depth=2 card_shared_noise=0.8
       card_guidance=4 align_classifier_low=trainers/checkpoints/latent-attributes-stage1"
rm -rf "${WORK:?}" && mkdir -p "$WORK/zoo" && cp -r "$START/shared" "$WORK/zoo/"  # the exports go to $WORK/zoo
finish() {  # also after a failure: what the runs logged, and where the time went
    for run in base pyr; do
        cp "$WORK/$run/log.csv" "$OUT/$run-log.csv" 2> /dev/null || true
        cp "$WORK/$run/curves.csv" "$OUT/$run-curves.csv" 2> /dev/null || true
    done
    echo "timing: ${SECONDS} s in all, realsize ${T_REALSIZE:-?} s, cache ${T_CACHE:-?} s, base ${T_BASE:-?} s," \
        "pyramid ${T_PYR:-?} s"
}
trap finish EXIT
# The real-size timing first, alone on the machine (at most 150 s), then the latent cache: 12,000 clips
# rendered in NPROC processes and encoded on the GPU (~20 min in one CPU process)
T_REALSIZE=$SECONDS
# shellcheck disable=SC2086  # REALSIZE is a list of arguments
timeout 150 $PY -m bench.realsize $REALSIZE --json > "$OUT/realsize.json" 2> "$OUT/realsize.log" \
    || echo "bench.realsize failed or ran out of time: see realsize.log"
T_REALSIZE=$((SECONDS - T_REALSIZE)) T_CACHE=$SECONDS
$PY -c "import sys, torch; from pathlib import Path; from trainers.data import cached; from trainers.zoo import load_vae
cached(load_vae(Path(sys.argv[1])), sys.argv[2], clips=int(sys.argv[3]), seed=0, workers=int(sys.argv[4]),
       encode_on='cuda' if torch.cuda.is_available() else '')" "$WORK/zoo/shared" "$CACHE" "$CACHE_CLIPS" "$NPROC"
T_CACHE=$((SECONDS - T_CACHE))
minutes_left() {  # what is left of the call less $1 seconds, in minutes
    awk -v s=$((DEADLINE - $(date +%s) - $1)) 'BEGIN { printf "%.2f", (s > 30 ? s : 30) / 60 }'
}
# The base gets what is left less the pyramid's share and 120 s (two start-ups, the last learning-curve
# points, the exports)
T_BASE=$SECONDS
# shellcheck disable=SC2086  # KNOBS and EXTRA are lists of key=value words
$PY -m trainers.base --max-minutes "$(minutes_left $((PYR_SECONDS + 120)))" init_from="$START/wan-tiny" \
    train_text_encoder=false fit_to_time=true zoo_dir="$WORK/zoo" out_dir="$WORK/base" cache="$CACHE" \
    cache_clips="$CACHE_CLIPS" max_steps="$STEPS" batch_size="$BATCH" lr="$LR" low_res_batch=$((2 * BATCH)) \
    num_threads=4 eval_every="$EVAL_EVERY" warmup_steps=100 object_weight=4 low_res_share=0.25 $KNOBS ${EXTRA:-}
T_BASE=$((SECONDS - T_BASE)) T_PYR=$SECONDS
tar -cf "$OUT/gpu-base.tar" -C "$WORK/zoo" wan-tiny  # the base comes back even if the pyramid runs out of time
# build_zoo step 3's recipe on the new base; one learning-curve point, at the end
$PY -m trainers.pyramidalize --max-minutes "$(minutes_left 45)" fit_to_time=true zoo_dir="$WORK/zoo" \
    out_dir="$WORK/pyr" cache="$CACHE" cache_clips="$CACHE_CLIPS" max_steps="$PYR_STEPS" batch_size="$PYR_BATCH" \
    num_threads=4 attribute_weight=3 temporal_weight=4 eval_every="$PYR_EVAL" ${PYR_EXTRA:-}
T_PYR=$((SECONDS - T_PYR))
mkdir -p "$WORK/zoo/runs/base" "$WORK/zoo/runs/pyr"
cp "$WORK/base/config.json" "$WORK/zoo/runs/base/" && cp "$WORK/pyr/config.json" "$WORK/zoo/runs/pyr/"
tar -cf "$OUT/gpu-base.tar" -C "$WORK/zoo" wan-tiny pyramidal-wan-tiny runs && tar -tvf "$OUT/gpu-base.tar"
