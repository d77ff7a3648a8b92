"""Start the PyramidalWan Studio web app (http://127.0.0.1:7860 by default).

    python app.py [--model-dir DIR ...] [--port 7860] [--host 0.0.0.0]
                  [--offload model|sequential] [--text-encoder-cpu] [--vae-tiling] [--vae-slicing]

Real models (e.g. a local Wan2.1-T2V-1.3B-Diffusers folder) come from --model-dir and from the
os.pathsep-separated folders in $PYRAMIDALWAN_MODEL_DIRS; the embedded zoo and random-tiny are always offered.
The memory flags (or $PYRAMIDALWAN_OFFLOAD, $PYRAMIDALWAN_TEXT_ENCODER_CPU, $PYRAMIDALWAN_VAE_TILING,
$PYRAMIDALWAN_VAE_SLICING) apply to every model the app loads; `python app.py --help` lists all flags.
"""

from __future__ import annotations

import logging
import sys


def main(argv: list[str] | None = None) -> int:
    from app.config import parse_config  # the flags live there (tested without starting a server)

    config, args = parse_config(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from app.ui import build_studio  # imports gradio (a few seconds)

    build_studio(config).launch(host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
