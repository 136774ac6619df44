r"""Attention-map figures in the style of the paper's Fig. 2: temporal vs trajectory attention.

One generation (image task, paper Alg. 3 trajectories from depth + camera path) runs inside
:func:`trajattn.attention.capture_attention_maps`; every temporal block then holds the
frame x frame softmax probabilities of its temporal attention (``attn1``) and of its
trajectory attention, averaged over latent cells, heads and UNet calls. Rows are query frames,
columns key frames, so each row of a captured map sums to 1.

Chosen denoising steps: a forward pre-hook on the UNet reads the scheduler's ``step_index``
(set by ``scale_model_input`` before each UNet call of diffusers' SVD loop) and opens one
capture context per chosen step, closing it when the step changes. This uses only the public
capture API, works unchanged inside :meth:`methods.trajattn.TrajectoryAttentionMethod.generate`
(also with NVS-Solver guidance, whose extra UNet call of a step counts to that step), and
gives per-step maps; the map of several steps is the mean of their per-step maps.

While capturing, ``attn1`` computes its softmax explicitly instead of through
``scaled_dot_product_attention``, so the generated frames may differ from an uncaptured run by
float rounding.

The figure (:func:`attention_figure`) shows, for each chosen block, the temporal and the
trajectory map side by side, each min-max normalised to [0, 1] as in Fig. 2, one shared colour
bar. Modules: :mod:`~benchmark.stages.attention.capture` (running and capturing),
:mod:`~benchmark.stages.attention.files` (``maps.npz``), :mod:`~benchmark.stages.attention.figure`
and :mod:`~benchmark.stages.attention.cli` (the stage function and its command line). CLI
(writes ``attention.png``, ``attention.pdf`` and ``maps.npz`` into ``--out``)::

    trajbench attention --preset trajattn_tiny --suite smoke --scene room00 \
        --camera orbit_left_15deg --frames 8 --out results/smoke/attention/trajattn_tiny

(``python -m benchmark.stages.attention_maps`` with the same arguments runs the same.)
"""

from benchmark.stages.attention.capture import (
    KINDS,
    AttentionMaps,
    BlockMaps,
    StepwiseCapture,
    collect_attention_maps,
    forward_order,
    mean_over_steps,
    resolve_blocks,
    resolve_steps,
)
from benchmark.stages.attention.cli import main, run_attention_figure, scene_request
from benchmark.stages.attention.figure import (
    KIND_TITLES,
    attention_figure,
    normalise_map,
    plot_attention_maps,
    short_block_name,
    unavailable_card,
)
from benchmark.stages.attention.files import load_maps, save_maps

__all__ = [
    "KINDS", "KIND_TITLES", "AttentionMaps", "BlockMaps", "StepwiseCapture", "attention_figure",
    "collect_attention_maps", "forward_order", "load_maps", "main", "mean_over_steps",
    "normalise_map", "plot_attention_maps", "resolve_blocks", "resolve_steps",
    "run_attention_figure", "save_maps", "scene_request", "short_block_name", "unavailable_card",
]
