"""Start the PyramidalWan Studio web app (http://127.0.0.1:7860 by default).

    python app.py [--model-dir DIR ...] [--port 7860] [--host 0.0.0.0]

Real models (e.g. a local Wan2.1-T2V-1.3B-Diffusers folder) come from --model-dir and from the
os.pathsep-separated folders in $PYRAMIDALWAN_MODEL_DIRS; the embedded zoo and random-tiny are always offered.
"""

from __future__ import annotations

import argparse
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="PyramidalWan Studio web app")
    parser.add_argument(
        "--model-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="a model folder in diffusers layout to offer (repeatable)",
    )
    parser.add_argument("--port", type=int, default=None, help="default: $GRADIO_SERVER_PORT or 7860")
    parser.add_argument("--host", default=None, help="default 127.0.0.1; 0.0.0.0 to serve the network")
    parser.add_argument(
        "--outputs", default=None, help="root of per-request output folders (default outputs/app)"
    )
    parser.add_argument(
        "--output-ttl", type=float, default=None, help="seconds to keep outputs (default 3600)"
    )
    parser.add_argument(
        "--queue-size", type=int, default=None, help="waiting requests before 'queue full' (16)"
    )
    parser.add_argument("--workers", type=int, default=None, help="generations running at once (default 2)")
    parser.add_argument(
        "--per-model", type=int, default=None, help="generations at once per model (default 1)"
    )
    parser.add_argument("--no-warm-up", action="store_true", help="do not preload the default model")
    parser.add_argument(
        "--budget",
        choices=["cpu", "gpu"],
        default=None,
        help="per-request limits (default $PYRAMIDALWAN_BUDGET, else gpu when CUDA is present)",
    )
    parser.add_argument(
        "--max-tflops",
        type=float,
        default=None,
        help="compute limit per request in TFLOPs (default $PYRAMIDALWAN_MAX_TFLOPS, else the budget's)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    from app.config import AppConfig

    try:
        config = AppConfig.from_env(
            args.model_dir,
            outputs_root=args.outputs,
            output_ttl_s=args.output_ttl,
            queue_size=args.queue_size,
            workers=args.workers,
            per_model=args.per_model,
            warm_up=False if args.no_warm_up else None,
            budget=args.budget,
            max_tflops=args.max_tflops,
        )
    except ValueError as err:
        parser.error(str(err))
    from app.ui import build_studio  # imports gradio (a few seconds)

    build_studio(config).launch(host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
