#!/usr/bin/env bash
# Rebuild the embedded zoo from nothing, in order (CPU). Each step resumes if rerun; times are for this
# 2-core machine (see trainers/README.md). Pass extra key=value overrides through the environment:
#   VAE_ARGS, BASE_ARGS, PYR_ARGS   e.g.  BASE_ARGS="num_threads=2" bash trainers/build_zoo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
$PY -m trainers.vae --max-minutes "${VAE_MINUTES:-45}" max_steps=1800 ${VAE_ARGS:-}
$PY -m trainers.base --max-minutes "${BASE_MINUTES:-75}" max_steps=3000 ${BASE_ARGS:-}
$PY -m trainers.pyramidalize --max-minutes "${PYR_MINUTES:-20}" max_steps=600 ${PYR_ARGS:-}
