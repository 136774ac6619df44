"""Attention-map figures (paper Fig. 2): kept as a module name for existing callers and
``python -m benchmark.stages.attention_maps ...``; the code lives in
:mod:`benchmark.stages.attention` (capture, files, figure, cli)."""

from __future__ import annotations

from benchmark.stages.attention import *  # noqa: F403
from benchmark.stages.attention import __all__  # noqa: F401
from benchmark.stages.attention.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
