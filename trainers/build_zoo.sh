#!/usr/bin/env bash
# Rebuild the embedded zoo from nothing, in order (CPU). Each step resumes if rerun (delete its runs/ folder
# to start over); times are for this 2-core machine (see trainers/README.md). Steps 3-4 are written as one
# lane here; the session that built the zoo ran them as two 1-thread lanes side by side (README).
# Extra key=value overrides through the environment: VAE_ARGS, BASE_ARGS, PYR_ARGS, DMD_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
# 1. the VAE
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
# 1d. two latent frames on either side (decoder_context=2), widened from 1c on the same frozen encoder
#     (eleventh session's run; shipped in the twelfth): held-out PSNR 29.75 dB against 1c's 29.34
$PY -m trainers.vae --max-minutes 18 init_from=assets/zoo/shared/vae decoder_channels=[12,48,96] decoder_blocks=1 \
    decoder_context=2 max_steps=2400 lr=5e-4 warmup_steps=20 num_threads=2 out_dir=runs/vae-ctx2
# 2. wan-tiny (+ its text encoder): recipe R1s of trainers/README.md ("Ninth/Tenth session"): from scratch with
#    3,500 low-resolution steps first, object weight 4, the attribute loss (weight 1.5) and representation
#    alignment (weight 0.5 at depth 2); at step 11,250 training sigma_shift goes from 3 to 5. 716 training
#    TFLOPs for its 13,507 steps, about 4.3 CPU-hours at one thread.
# 2a. the two frozen classifiers these losses read: latents at full resolution (attribute loss and alignment)
#     and at stage 1 (alignment in the low-resolution steps); ~12 + 1 minutes
$PY -m trainers.attributes
$PY -m trainers.attributes stage=1 out_dir=runs/latent-attributes-stage1 \
    export_dir=trainers/checkpoints/latent-attributes-stage1
# 2b. R1 from scratch; its cosine schedule first spanned 12,000 steps (stopped at 8,500), then was stretched to
#     15,000 and resumed (the run's full state: optimizer and projector) to step 11,250
R1="num_threads=1 cache_clips=12000 low_res_steps=3500 low_res_share=0.25 low_res_batch=64 object_weight=4
    attribute_weight=1.5 align_weight=0.5 align_depth=2 eval_every=500
    align_classifier_low=trainers/checkpoints/latent-attributes-stage1"
copy() { mkdir -p "$2" && cp -r "$1"/. "$2"/; }  # folder contents, so that a rerun copies over, not into
copy assets/zoo/shared runs/zoo-r1/shared  # the VAE and tokenizer; the text encoder is trained from scratch
$PY -m trainers.base max_steps=12000 stop_at=8500 sigma_shift=3 $R1 out_dir=runs/lane-r1 zoo_dir=runs/zoo-r1 \
    ${BASE_ARGS:-}
$PY -m trainers.base max_steps=15000 stop_at=11250 sigma_shift=3 $R1 out_dir=runs/lane-r1 zoo_dir=runs/zoo-r1 \
    ${BASE_ARGS:-}
# 2c. R1s: a copy of that state resumed with training sigma_shift 5 to step 13,507 (shipped until the
#     thirteenth session; 2d branches from it).
#     Its card samples with 0.8 of the starting noise shared by all latent frames (twelfth session; DESIGN
#     §6b), which its learning-curve points from here on use too; the pyramids inherit it.
[ -d runs/lane-r1s ] || { copy runs/lane-r1 runs/lane-r1s && copy runs/zoo-r1/shared runs/zoo-r1s/shared; }
$PY -m trainers.base max_steps=15000 stop_at=13507 sigma_shift=5 $R1 card_shared_noise=0.8 out_dir=runs/lane-r1s \
    zoo_dir=runs/zoo-r1s ${BASE_ARGS:-}
# 2d. H8 (thirteenth session): a copy of R1s's state warm-restarted (schedule stretched to 17,500 steps, so the
#     rate jumps back to 2.1e-4) with training sigma_shift 8 and the temporal term at weight 4; copied into
#     assets/zoo. 973 training TFLOPs in all, the lineage about 5.9 CPU-hours at one thread. Its card samples
#     at guidance 4 (fourteenth session: measured better than 3 for H8; the pyramids keep 3).
[ -d runs/lane-h8 ] || { copy runs/lane-r1s runs/lane-h8 && rm -f runs/lane-h8/log.csv && copy runs/zoo-r1s/shared runs/zoo-h8/shared; }
$PY -m trainers.base max_steps=17500 stop_at=0 sigma_shift=8 temporal_weight=4 $R1 card_shared_noise=0.8 card_guidance=4 \
    out_dir=runs/lane-h8 zoo_dir=runs/zoo-h8 ${BASE_ARGS:-}
copy runs/zoo-h8/wan-tiny assets/zoo/wan-tiny && copy runs/zoo-h8/shared/text_encoder assets/zoo/shared/text_encoder
# 3. the pyramidal finetune (pixel definition), and the latent definition for comparison, with the base's
#    attribute loss on the top two stages (without it the finetune washes out the base's shape and motion
#    binding: trainers/README.md). The pixel one: 2,400 steps, 81.3 TFLOPs = 8.4% of the base's 973, attribute
#    weight 3 and the base's temporal term on each stage's clean estimate (sixteenth session; ~37 minutes).
#    The latent one: the same recipe and budget (seventeenth session; its latent cache, built on first use, is
#    the pixel cache's clips with the lower stages taken as R↓ of the full-resolution latents).
$PY -m trainers.pyramidalize --max-minutes 60 max_steps=2400 cache_clips=12000 num_threads=1 attribute_weight=3 \
    temporal_weight=4 eval_every=600 ${PYR_ARGS:-}
$PY -m trainers.pyramidalize --max-minutes 60 max_steps=2400 cache_clips=12000 num_threads=1 definition=latent \
    attribute_weight=3 temporal_weight=4 eval_every=600 \
    variant=pyramidal-wan-tiny-latent out_dir=runs/pyramidal-wan-tiny-latent ${PYR_ARGS:-}
# 4. step distillation (trainers/distill.py): DMD-PT* (shipped as pyramidal-wan-tiny-dmd), DMD-PT, DMD-OT,
#    then the plain baseline and the adversarial variant, which keep the earlier settings (2 critic updates,
#    lr 1e-4): the defaults (5, 2e-5) measured worse for those two (trainers/README.md)
#    Teacher pairs: pyramidal-wan-tiny's 20-20-10 outputs serve PT*, PT, adv and OT (a plain teacher has no
#    lower-stage outputs, so OT's come from its pyramidal initialisation: the same model, seed and schedule);
#    the plain baseline regresses onto wan-tiny's own 0-0-50 outputs
PAIRS_PYR="pairs_file=runs/pairs-pyramidal-wan-tiny.pt"
PAIRS_WAN="pairs_file=runs/pairs-wan-tiny-0-0-50.pt"
#    DMD-PT*, DMD-PT and DMD-OT run 800 steps at lr 5e-5 with no regression term (seventeenth session: for
#    each of the three, FD better on the three-seed mean than the earlier 2e-5 with regression 0.01; the
#    adversarial variant stops at step 775 of 800, as the fourteenth session's time limit did)
#    (Guidance distillation first, then DMD-PT*, measured level with DMD-PT* alone on this pyramid: README.)
DMD="max_steps=800 lr=5e-5 reg_weight=0"
$PY -m trainers.distill --max-minutes 40 $DMD $PAIRS_PYR ${DMD_ARGS:-}
$PY -m trainers.distill --max-minutes 30 $DMD method=pt variant=pyramidal-wan-tiny-dmd-pt out_dir=runs/dmd-pt \
    $PAIRS_PYR ${DMD_ARGS:-}
$PY -m trainers.distill --max-minutes 30 $DMD method=ot teacher=wan-tiny teacher_lowres_steps=200 \
    variant=pyramidal-wan-tiny-dmd-ot out_dir=runs/dmd-ot $PAIRS_PYR ${DMD_ARGS:-}
$PY -m trainers.distill --max-minutes 10 max_steps=800 method=plain generator=wan-tiny teacher=wan-tiny \
    schedule=0-0-4 critic_updates=2 lr=1e-4 variant=wan-tiny-dmd out_dir=runs/wan-tiny-dmd $PAIRS_WAN ${DMD_ARGS:-}
$PY -m trainers.distill --max-minutes 30 max_steps=800 stop_at=775 method=adv critic_updates=2 lr=1e-4 \
    variant=pyramidal-wan-tiny-adv out_dir=runs/adv $PAIRS_PYR ${DMD_ARGS:-}
#    DMD-PT* distilled for 2-2-2 (one more full-resolution step; nineteenth session: FD and "all" ahead of
#    the 2-2-1 generator on the five-seed mean, at 3.1% of wan-tiny's 0-0-50 sampler time)
$PY -m trainers.distill --max-minutes 60 $DMD schedule=2-2-2 variant=pyramidal-wan-tiny-dmd-222 \
    out_dir=runs/dmd-222 $PAIRS_PYR ${DMD_ARGS:-}
#    DMD-PT* with a top-stage expert (twentieth session; rebuilt in the twenty-first): the shipped generator's
#    full-resolution stage trained as its own transformer (top_expert: a fresh critic, 1,000 top steps over
#    the frozen lower stages, which training the shared network's top step alone would have moved; DESIGN §7)
$PY -m trainers.distill --max-minutes 100 max_steps=1000 lr=5e-5 reg_weight=0 top_expert=true \
    generator=pyramidal-wan-tiny-dmd variant=pyramidal-wan-tiny-dmd-expert out_dir=runs/dmd-expert \
    $PAIRS_PYR ${DMD_ARGS:-}
# 5. the results table
$PY -m bench.report --n 32 --threads 1
