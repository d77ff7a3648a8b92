"""Give a few-step generator a top-stage expert: its lower stages keep `lower`'s transformer and its last
(full-resolution) stage samples with `top`'s (the folder's `transformer_2/`; engine.models, DESIGN §7).

    python -m trainers.expert lower=pyramidal-wan-tiny-dmd top=runs/zoo-new/pyramidal-wan-tiny-dmd-o1 \
        variant=pyramidal-wan-tiny-dmd-x

Why: the generator is one network for every stage, so training its full-resolution step alone (`distill
step_weights=0-0-0-0-1`) also moves what it does at the lower stages, where the shape and motion are
decided. Measured (trainers/README.md, twentieth session): the trained top step under the *untrained*
lower stages keeps their attributes and its own better FD. Both models must share the architecture and the
pyramid; the variant takes `lower`'s card with `schedule` (default: lower's) and a new description.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from engine.models import ZOO_DIR, load_model
from engine.zoo import ModelRegistry
from trainers.common import parse_config
from trainers.zoo import export_variant


@dataclasses.dataclass
class ExpertConfig:
    lower: str = "pyramidal-wan-tiny-dmd"  # zoo name or folder: the transformer of the lower stages
    top: str = ""  # zoo name or folder: the transformer of the full-resolution stage
    variant: str = "pyramidal-wan-tiny-dmd-x"
    schedule: str = ""  # the variant's default schedule; empty: lower's
    zoo_dir: str = str(ZOO_DIR)


def assemble(cfg: ExpertConfig) -> Path:
    if not cfg.top:
        raise SystemExit("give top=<zoo name or folder>: the model whose transformer samples the top stage")
    zoo = ModelRegistry(cfg.zoo_dir)
    lower, top = (load_model(zoo.locate(n), device="cpu", dtype="float32") for n in (cfg.lower, cfg.top))
    for model in (lower, top):
        if model.top_expert is not None:
            raise SystemExit(f"{model.name} already has a top-stage expert; give single-transformer models")

    def architecture(model) -> dict:
        return {k: v for k, v in dict(model.transformer.config).items() if not k.startswith("_")}

    if architecture(lower) != architecture(top):
        raise SystemExit(f"{cfg.lower} and {cfg.top} have different transformer configs")
    if lower.geometry != top.geometry:
        raise SystemExit(f"{cfg.lower} and {cfg.top} sample different pyramids")
    schedule = cfg.schedule or lower.card.schedule
    card = dataclasses.replace(
        lower.card,
        schedule=schedule,
        description=(
            f"{cfg.variant}: {lower.name}'s lower stages with {top.name}'s full-resolution stage as a "
            f"top-stage expert, for {schedule}"
        ),
    )
    return export_variant(cfg.variant, lower.transformer, card, Path(cfg.zoo_dir), top_expert=top.transformer)


def main(argv: list[str] | None = None) -> None:
    cfg = parse_config(ExpertConfig, argv, __doc__)
    print(f"exported {assemble(cfg)}")


if __name__ == "__main__":
    main()
