#!/usr/bin/env bash
# Continue the shipped wan-tiny (recipe H8, the alignment lineage: trainers/README.md, tenth to thirteenth
# sessions) with its own recipe on one lent GPU, in a single call of ≤ 9 minutes.
#
# Prepared on the CPU, not yet run on a GPU. The GPU machine's python3 has torch, accelerate, transformers,
# safetensors, numpy, imageio, pillow, pyyaml and tqdm but not diffusers or pywt: carry their wheels (10.8 MB),
# fetched here once with
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl diffusers==0.42.1 PyWavelets==1.9.0
# imageio-ffmpeg (imported by engine/video.py) is not carried: its wheel holds ffmpeg (68 MB, over the 64 MiB a
# call carries) and training writes no mp4, so an empty stand-in module takes its place there.
# Device tool: command `bash trainers/gpu_base.sh`, carry [".whl"], timeout_s 600.
# Back in $OUT: gpu-base.tar (wan-tiny/… and shared/text_encoder/…), log.csv, curves.csv, gpu-base.log. A zoo
# to load or ship from it: mkdir -p Z && cp -r assets/zoo/shared Z/ && tar -xf gpu-base.tar -C Z  (then Z/wan-tiny)
# CPU smoke test (seconds): OUT=/tmp/gpu-smoke PY=.venv/bin/python STEPS=3 BATCH=4 CACHE_CLIPS=64 EVAL_EVERY=0 \
#   CACHE=/tmp/gpu-smoke-cache.pt WORK=/tmp/gpu-smoke-work NPROC=2 bash trainers/gpu_base.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1 HF_HUB_OFFLINE=1  # no progress bar: log.csv has the progress
: "${OUT:?OUT must name the folder whose files come back}"
mkdir -p "$OUT" && exec > >(tee "$OUT/gpu-base.log") 2>&1
DEADLINE=$(($(date +%s) + ${TOTAL_MINUTES:-9} * 60))
PY=${PY:-python3}
# A cosine schedule over STEPS steps of BATCH clips; 3,000 assumes ≥ 10 steps/s (a guess: the tiny model is
# bound by kernel launches), log.csv's minutes column gives the real rate for the next run.
STEPS=${STEPS:-3000} BATCH=${BATCH:-128} EVAL_EVERY=${EVAL_EVERY:-1000}
CACHE_CLIPS=${CACHE_CLIPS:-12000} CACHE=${CACHE:-runs/cache/gpu-train-17x128x128.pt}
NPROC=${NPROC:-$(nproc)} WORK=${WORK:-/tmp/gpu-base} SITE=/tmp/site
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv
if compgen -G ".whl/*.whl" > /dev/null; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $SITE .whl/*.whl
fi
export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
$PY -c "import imageio_ffmpeg" 2> /dev/null \
    || { mkdir -p $SITE && echo '"""Stand-in: no mp4 input or output on this machine."""' > $SITE/imageio_ffmpeg.py; }
START=assets/zoo  # H8's recipe (the rest of the command is below)
KNOBS="sigma_shift=8 temporal_weight=4 attribute_weight=1.5 lr=3e-4 align_weight=0.5 align_depth=2 card_shared_noise=0.8 card_guidance=4
       align_classifier_low=trainers/checkpoints/latent-attributes-stage1"
rm -rf "${WORK:?}" && mkdir -p "$WORK/zoo" && cp -r "$START/shared" "$WORK/zoo/"  # the export goes to $WORK/zoo
finish() {  # also after a failure: what the run logged, and where the time went
    cp "$WORK/run/log.csv" "$WORK/run/curves.csv" "$OUT/" 2> /dev/null || true
    echo "timing: ${SECONDS} s in all, cache ${T_CACHE:-?} s; last log row (step,minutes,lr,loss):" \
        "$(tail -n 1 "$WORK/run/log.csv" 2> /dev/null | cut -d, -f1-4)"
}
trap finish EXIT
# The latent cache (12,000 clips: ~20 min in one process) in NPROC processes on the CPU.
T_CACHE=$SECONDS
$PY -c "import sys; from pathlib import Path; from trainers.data import cached; from trainers.zoo import load_vae
cached(load_vae(Path(sys.argv[1])), sys.argv[2], clips=int(sys.argv[3]), seed=0, workers=int(sys.argv[4]))" \
    "$WORK/zoo/shared" "$CACHE" "$CACHE_CLIPS" "$NPROC"
T_CACHE=$((SECONDS - T_CACHE))
# Training gets what is left of the call less 100 s (start-up, the last learning-curve point, the export).
MINUTES=${MINUTES:-$(( (DEADLINE - $(date +%s) - 100) / 60 ))}
# shellcheck disable=SC2086  # KNOBS and EXTRA are lists of key=value words
$PY -m trainers.base --max-minutes "$MINUTES" init_from="$START/wan-tiny" zoo_dir="$WORK/zoo" \
    out_dir="$WORK/run" cache="$CACHE" cache_clips="$CACHE_CLIPS" max_steps="$STEPS" batch_size="$BATCH" \
    low_res_batch=$((2 * BATCH)) num_threads="$NPROC" eval_every="$EVAL_EVERY" warmup_steps=100 \
    object_weight=4 low_res_share=0.25 $KNOBS ${EXTRA:-}
tar -cf "$OUT/gpu-base.tar" -C "$WORK/zoo" wan-tiny shared/text_encoder && tar -tvf "$OUT/gpu-base.tar"
