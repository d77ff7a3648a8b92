#!/usr/bin/env bash
# Rebuild the embedded zoo from nothing, in order (CPU). Each step resumes if rerun (delete its runs/ folder
# to start over); times are for this 2-core machine (see trainers/README.md). Steps 3-4 are written as one
# lane here; the session that built the zoo ran them as two 1-thread lanes side by side (README).
# Extra key=value overrides through the environment: VAE_ARGS, BASE_ARGS, PYR_ARGS, DMD_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
# 1. VAE, 2. wan-tiny (+ shared text encoder): recipe LW of trainers/README.md (shift 3, 3,500 low-resolution
#    steps first, object weight 4; 231 training TFLOPs for its 6,000 steps, ~1.8 CPU-hours at one thread)
$PY -m trainers.vae --max-minutes 45 max_steps=1800 ${VAE_ARGS:-}
# 1b. a lighter, sharper decoder on the frozen encoder (same latents; replaces the decoder in place)
$PY -m trainers.vae --max-minutes 60 init_from=assets/zoo/shared/vae decoder_channels=[12,48,96] decoder_blocks=1 \
    max_steps=4000 out_dir=runs/vae-decoder
# 1c. the decoder sees its neighbouring latent frames (decoder_context=1), finetuned from 1b on the same frozen
#     encoder: motion inside each 4-frame chunk (run as 800 steps, then resumed to 2,400)
for steps in 800 2400; do
    $PY -m trainers.vae --max-minutes 30 init_from=assets/zoo/shared/vae decoder_channels=[12,48,96] decoder_blocks=1 \
        decoder_context=1 max_steps=$steps lr=5e-4 warmup_steps=20 num_threads=1 out_dir=runs/vae-ctx
done
LW="cache_clips=12000 sigma_shift=3 low_res_steps=3500 low_res_share=0.25 low_res_batch=64 object_weight=4 eval_every=500"
$PY -m trainers.base --max-minutes 150 max_steps=6000 num_threads=1 $LW ${BASE_ARGS:-}
# 2b. LW continued with a longer schedule to step 7,127 (schedule over 8,000; stop_at reproduces where that
#     run was stopped): 304 training TFLOPs in all
$PY -m trainers.base max_steps=8000 stop_at=7127 num_threads=1 $LW ${BASE_ARGS:-}
# 2c. the latent attribute classifier that recipe LA's loss reads (trainers/attributes.py, ~12 min)
$PY -m trainers.attributes
# 2d. recipe LA: + the attribute loss (weight 0.5) from LW's step 7,127, a fresh optimizer and a 6,000-step
#     schedule, stopped at 2,773 steps (+179 TFLOPs); then LA continued (LB) with a fresh 3,000-step schedule
#     at attribute weight 1.5 (+194 TFLOPs), and LB continued (LC, 2e) at 3.0. Each stage starts from the
#     exported weights of the one before, in its own zoo folder; the last one is copied into assets/zoo
#     (wan-tiny and the shared text encoder)
LA="cache_clips=12000 num_threads=1 sigma_shift=3 object_weight=4 low_res_share=0.25 eval_every=500 lr=5e-4"
copy() { mkdir -p "$2" && cp -r "$1"/. "$2"/; }  # folder contents, so that a rerun copies over, not into
[ -d runs/zoo-lw7127/wan-tiny ] || {  # LW's step 7,127 as exported by 2b (assets/zoo holds LC after a full build)
    copy assets/zoo/wan-tiny runs/zoo-lw7127/wan-tiny && copy assets/zoo/shared runs/zoo-lw7127/shared; }
copy assets/zoo/shared runs/zoo-la/shared
$PY -m trainers.base max_steps=6000 stop_at=2773 attribute_weight=0.5 $LA init_from=runs/zoo-lw7127/wan-tiny \
    out_dir=runs/lane-la zoo_dir=runs/zoo-la ${BASE_ARGS:-}
copy runs/zoo-la/shared runs/zoo-lb/shared
$PY -m trainers.base max_steps=3000 warmup_steps=100 attribute_weight=1.5 $LA init_from=runs/zoo-la/wan-tiny \
    out_dir=runs/lane-lb zoo_dir=runs/zoo-lb ${BASE_ARGS:-}
# 2e. recipe LC: LB continued at attribute weight 3.0 with a fresh 3,000-step schedule, stopped by its time
#     limit at step 2,721 (+176 TFLOPs; 853 in all, about 5.8 CPU-hours for the whole lineage)
copy runs/zoo-lb/shared runs/zoo-lc/shared
$PY -m trainers.base max_steps=3000 stop_at=2721 warmup_steps=100 attribute_weight=3.0 $LA \
    init_from=runs/zoo-lb/wan-tiny out_dir=runs/lane-lc zoo_dir=runs/zoo-lc ${BASE_ARGS:-}
copy runs/zoo-lc/wan-tiny assets/zoo/wan-tiny && copy runs/zoo-lc/shared/text_encoder assets/zoo/shared/text_encoder
# 3. the pyramidal finetune (pixel definition), and the latent definition for comparison: 680 steps each,
#    23.0 TFLOPs = 2.7% of the base's 853, with the base's attribute loss on the top two stages (without it
#    the finetune washes out the base's shape and motion binding: trainers/README.md)
$PY -m trainers.pyramidalize --max-minutes 30 max_steps=680 cache_clips=12000 num_threads=1 attribute_weight=1.5 \
    ${PYR_ARGS:-}
$PY -m trainers.pyramidalize --max-minutes 30 max_steps=680 cache_clips=4000 num_threads=1 definition=latent \
    attribute_weight=1.5 \
    variant=pyramidal-wan-tiny-latent out_dir=runs/pyramidal-wan-tiny-latent ${PYR_ARGS:-}
# 4. step distillation (trainers/distill.py): DMD-PT* (shipped as pyramidal-wan-tiny-dmd), DMD-PT, DMD-OT,
#    then the plain baseline and the adversarial variant, which keep the earlier settings (2 critic updates,
#    lr 1e-4): the defaults (5, 2e-5) measured worse for those two (trainers/README.md)
#    Teacher pairs: pyramidal-wan-tiny's 20-20-10 outputs serve PT*, PT, adv and OT (a plain teacher has no
#    lower-stage outputs, so OT's come from its pyramidal initialisation: the same model, seed and schedule);
#    the plain baseline regresses onto wan-tiny's own 0-0-50 outputs
PAIRS_PYR="pairs_file=runs/pairs-pyramidal-wan-tiny.pt"
PAIRS_WAN="pairs_file=runs/pairs-wan-tiny-0-0-50.pt"
#    DMD-PT* runs 25 minutes (1,000 steps; its FD kept falling to step ~700), the others 10 as measured before
$PY -m trainers.distill --max-minutes 25 max_steps=1000 $PAIRS_PYR ${DMD_ARGS:-}
$PY -m trainers.distill --max-minutes 10 max_steps=800 method=pt variant=pyramidal-wan-tiny-dmd-pt \
    out_dir=runs/dmd-pt $PAIRS_PYR ${DMD_ARGS:-}
$PY -m trainers.distill --max-minutes 10 max_steps=800 method=ot teacher=wan-tiny teacher_lowres_steps=200 \
    variant=pyramidal-wan-tiny-dmd-ot out_dir=runs/dmd-ot $PAIRS_PYR ${DMD_ARGS:-}
$PY -m trainers.distill --max-minutes 10 max_steps=800 method=plain generator=wan-tiny teacher=wan-tiny \
    schedule=0-0-4 critic_updates=2 lr=1e-4 variant=wan-tiny-dmd out_dir=runs/wan-tiny-dmd $PAIRS_WAN ${DMD_ARGS:-}
$PY -m trainers.distill --max-minutes 7 max_steps=800 method=adv critic_updates=2 lr=1e-4 \
    variant=pyramidal-wan-tiny-adv out_dir=runs/adv $PAIRS_PYR ${DMD_ARGS:-}
# 5. the results table
$PY -m bench.report --n 32 --threads 1
