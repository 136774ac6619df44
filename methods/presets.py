"""Method presets: ``configs/methods/NAME.yaml`` files ``{adapter, args, resources}``, one per
method variant, read through the one namespace of :mod:`methods.registry`.

A name is a preset (or a path to a preset .yaml), else a registered adapter with its default
options, else a ``"package.module:Class"`` adapter path; anything else is an
:class:`~methods.registry.UnknownMethodError` with the closest names.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from methods.base import Method
from methods.registry import PRESETS_DIR, REGISTRY, create_method, unknown_method

#: What one generation asks a scheduler for unless its preset says otherwise: one GPU, and host
#: memory for a diffusion pipeline (read into RAM before it moves to the GPU).
DEFAULT_GENERATE_RESOURCES: dict[str, int] = {"gpu": 1, "mem_mb": 32000}


def preset_file(name: str) -> dict[str, Any] | None:
    """The raw preset file of ``name`` (configs/methods/{name}.yaml, or ``name`` itself when it
    is a path to a .yaml file), or None for a bare adapter name with no preset file."""
    path = PRESETS_DIR / f"{name}.yaml"
    if name.endswith((".yaml", ".yml")):
        path = Path(name)
        if not path.is_file():
            raise FileNotFoundError(f"no method preset file {path}")
    if not path.exists():
        return None
    preset = yaml.safe_load(path.read_text()) or {}
    if "adapter" not in preset:
        raise ValueError(f"{path}: a preset needs 'adapter'")
    return preset


def load_preset(name: str) -> dict[str, Any]:
    """A method preset ``{adapter, args}`` from configs/methods/{name}.yaml (or from ``name``
    itself when it is a path to a .yaml file); a bare adapter name with no preset file means
    that adapter with its defaults."""
    preset = preset_file(name)
    if preset is None:
        return {"adapter": name, "args": {}}
    return {"adapter": preset["adapter"], "args": preset.get("args") or {}}


def preset_resources(name: str) -> dict[str, int]:
    """What one generation with this method asks the scheduler for: the preset's optional
    ``resources`` (``gpu``: GPUs, ``mem_mb``: host memory) over
    :data:`DEFAULT_GENERATE_RESOURCES`. The method declares it, so a rule never lists method
    names (a CPU-only preset must not ask a GPU: SLURM refuses gpu jobs on GPU-less nodes)."""
    preset = preset_file(name) or {}
    declared = preset.get("resources") or {}
    unknown = set(declared) - set(DEFAULT_GENERATE_RESOURCES)
    if unknown or not all(isinstance(v, int) and v >= 0 for v in declared.values()):
        raise ValueError(
            f"method {name!r}: preset 'resources' takes non-negative integers for "
            f"{sorted(DEFAULT_GENERATE_RESOURCES)}, got {declared!r}"
        )
    return {**DEFAULT_GENERATE_RESOURCES, **declared}


def check_method_names(names: list[str]) -> None:
    """Refuse names that are neither a preset, a registered adapter nor a ``module:Class``
    adapter path, before any job runs (a typo would otherwise fail every generation)."""
    for name in names:
        adapter = load_preset(name)["adapter"]
        if adapter in REGISTRY or ":" in adapter:
            continue
        raise unknown_method(
            name, f": no preset configs/methods/{name}.yaml and no registered adapter "
            f"{adapter!r}"
        )


def method_from_preset(source: Any, options: Mapping[str, Any] | None = None) -> Method:
    """A method adapter from a preset name / .yaml path or a ``{adapter, args}`` dict, with
    ``options`` over the preset's args (the one way stages turn a name into an adapter)."""
    if isinstance(source, (str, Path)):
        preset = load_preset(str(source))
    elif isinstance(source, Mapping):
        preset = {"adapter": source["adapter"], "args": dict(source.get("args") or {})}
    else:
        raise TypeError(f"cannot make a method from {type(source).__name__}")
    return create_method(preset["adapter"], {**preset["args"], **dict(options or {})})
