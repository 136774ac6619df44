"""Method adapters and their registry.

The registry maps a method name to ``"module:Class"`` and imports lazily, so one method's
heavy dependencies (diffusers, upstream repositories) never load for another. Adding a
method is one file plus one config entry: a preset ``configs/methods/NAME.yaml`` whose
``adapter`` is either a registered name or the import path ``"package.module:Class"`` of an
adapter anywhere on ``sys.path`` (see docs/adding-a-method.md).
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
    "trajattn_wan": "methods.trajattn_wan:WanTrajectoryAttentionMethod",
    "cameractrl": "methods.cameractrl:CameraCtrl",
    "nvs_solver": "methods.nvs_solver:NVSSolver",
    "motionctrl": "methods.motionctrl:MotionCtrl",
    "motion_i2v": "methods.motion_i2v:MotionI2V",
}


class UnknownMethodError(KeyError):
    """A method name that is not registered; the message suggests the closest names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def available_methods() -> list[str]:
    """Registered method names, sorted."""
    return sorted(REGISTRY)


def get_method_class(name: str) -> type:
    """The adapter class registered under ``name``, or at the import path
    ``"package.module:Class"`` (imported now)."""
    if ":" in name and name not in REGISTRY:
        return _import_adapter(name)
    if name not in REGISTRY:
        close = difflib.get_close_matches(name, REGISTRY, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownMethodError(
            f"unknown method {name!r}.{hint} Registered: {', '.join(available_methods())}"
        )
    module_name, class_name = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def _import_adapter(path: str) -> type:
    """An adapter class by import path, checked to be a :class:`methods.base.Method`."""
    from methods.base import Method

    module_name, _, class_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnknownMethodError(
            f"adapter {path!r}: cannot import module {module_name!r} ({exc}); is its folder on "
            "PYTHONPATH?"
        ) from exc
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise UnknownMethodError(
            f"adapter {path!r}: {module_name} has no Method subclass named {class_name!r}"
        )
    return cls


def create_method(name: str, conf: dict[str, Any] | None = None) -> Any:
    """Instantiate the adapter ``name`` with ``conf`` merged over its ``default_conf``."""
    return get_method_class(name)(conf)
