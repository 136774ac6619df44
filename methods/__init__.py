"""Method adapters and their registry.

The registry maps a method name to ``"module:Class"`` and imports lazily, so one method's
heavy dependencies (diffusers, upstream repositories) never load for another. Adding a
method is one file in this package plus one line here (see docs/adding-a-method.md).
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

REGISTRY: dict[str, str] = {
    "gt_render": "methods.gt_render:GroundTruthRender",
    "depth_warp": "methods.depth_warp:DepthWarp",
    "static": "methods.static:Static",
    "trajattn": "methods.trajattn:TrajectoryAttentionMethod",
}


class UnknownMethodError(KeyError):
    """A method name that is not registered; the message suggests the closest names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def available_methods() -> list[str]:
    """Registered method names, sorted."""
    return sorted(REGISTRY)


def get_method_class(name: str) -> type:
    """The adapter class registered under ``name`` (imported now)."""
    if name not in REGISTRY:
        close = difflib.get_close_matches(name, REGISTRY, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownMethodError(
            f"unknown method {name!r}.{hint} Registered: {', '.join(available_methods())}"
        )
    module_name, class_name = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def create_method(name: str, conf: dict[str, Any] | None = None) -> Any:
    """Instantiate the adapter ``name`` with ``conf`` merged over its ``default_conf``."""
    return get_method_class(name)(conf)
