"""One namespace of method names: presets (``configs/methods/NAME.yaml``) and registered
adapters, with one "did you mean" for both.

The registry maps an adapter name to ``"module:Class"`` and imports lazily, so one method's
heavy dependencies (diffusers, upstream repositories) never load for another. A preset names
its ``adapter``: a registered name or the import path ``"package.module:Class"`` of an adapter
anywhere on ``sys.path`` (see docs/adding-a-method.md).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from methods.base import Method

#: Method presets, one YAML file per variant: ``{adapter, args, resources}``.
PRESETS_DIR = Path(__file__).resolve().parents[1] / "configs" / "methods"

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
    """A method name that is neither a preset nor a registered adapter; the message suggests
    the closest known names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def available_methods() -> list[str]:
    """Registered adapter names, sorted."""
    return sorted(REGISTRY)


def preset_names() -> list[str]:
    """Names of the presets in :data:`PRESETS_DIR`, sorted."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def known_names() -> list[str]:
    """Every name a user may give for a method: presets and registered adapters, sorted."""
    return sorted(set(preset_names()) | set(REGISTRY))


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """`` Did you mean 'a', 'b'?`` for the up to three closest ``choices`` (difflib), or ''."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def unknown_method(name: str, detail: str = "") -> UnknownMethodError:
    """The one error for a name that is no method: what is missing, the closest known names
    (presets and adapters together) and the full list."""
    known = known_names()
    return UnknownMethodError(
        f"unknown method {name!r}{detail}.{did_you_mean(name, known)} Known: {', '.join(known)}"
    )


def get_method_class(name: str) -> type:
    """The adapter class registered under ``name``, or at the import path
    ``"package.module:Class"`` (imported now)."""
    if ":" in name and name not in REGISTRY:
        return _import_adapter(name)
    if name not in REGISTRY:
        raise unknown_method(name)
    module_name, class_name = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def _import_adapter(path: str) -> type:
    """An adapter class by import path, checked to be a :class:`methods.base.Method`."""
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
