"""Attention maps on disk: one ``.npz`` per capture (mean and per-step maps, JSON meta)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchmark.io import atomic_write
from benchmark.stages.attention.capture import AttentionMaps, BlockMaps


def save_maps(maps: AttentionMaps, path: str | Path) -> Path:
    r"""Write ``maps`` to an ``.npz``: ``mean/{block}/{kind}``, ``step{k}/{block}/{kind}``
    arrays and a JSON ``meta`` string (steps, step count, blocks, info). Atomic."""
    arrays: dict[str, np.ndarray] = {}
    for block, entry in maps.maps.items():
        for kind, probs in entry.items():
            arrays[f"mean/{block}/{kind}"] = probs
    for step, step_maps in maps.per_step.items():
        for block, entry in step_maps.items():
            for kind, probs in entry.items():
                arrays[f"step{step}/{block}/{kind}"] = probs
    meta = {
        "steps": maps.steps,
        "num_inference_steps": maps.num_inference_steps,
        "blocks": maps.blocks,
        "info": maps.info,
        "rows": "query frame",
        "columns": "key frame",
    }
    arrays["meta"] = np.array(json.dumps(meta, default=str))

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)

    return atomic_write(path, write)


def load_maps(path: str | Path) -> AttentionMaps:
    """Read a file written by :func:`save_maps` (frames are not stored)."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        mean: BlockMaps = {}
        steps: dict[int, BlockMaps] = {int(s): {} for s in meta["steps"]}
        for key in data.files:
            if key == "meta":
                continue
            group, rest = key.split("/", 1)
            block, kind = rest.rsplit("/", 1)
            target = mean if group == "mean" else steps[int(group[len("step"):])]
            target.setdefault(block, {})[kind] = data[key]

    def ordered(block_maps: BlockMaps) -> BlockMaps:
        return {b: block_maps[b] for b in meta["blocks"] if b in block_maps}

    maps = ordered(mean)
    per_step = {step: ordered(step_maps) for step, step_maps in steps.items()}
    return AttentionMaps(
        maps=maps,
        per_step=per_step,
        steps=[int(s) for s in meta["steps"]],
        num_inference_steps=int(meta["num_inference_steps"]),
        info=meta.get("info", {}),
    )


