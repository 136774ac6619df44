"""Method adapters, their registry and their presets.

One namespace of names (:mod:`methods.registry`): a preset ``configs/methods/NAME.yaml``
(:mod:`methods.presets`) or a registered adapter, with one "did you mean". Adapters are
imported lazily, by name, so one method's heavy dependencies (diffusers, upstream repositories)
never load for another. Adding a method is one file plus one preset (docs/adding-a-method.md).
"""

from __future__ import annotations

from methods.presets import (
    DEFAULT_GENERATE_RESOURCES,
    check_method_names,
    load_preset,
    method_from_preset,
    preset_file,
    preset_resources,
)
from methods.registry import (
    PRESETS_DIR,
    REGISTRY,
    UnknownMethodError,
    available_methods,
    create_method,
    did_you_mean,
    get_method_class,
    known_names,
    preset_names,
    unknown_method,
)

__all__ = [
    "DEFAULT_GENERATE_RESOURCES", "PRESETS_DIR", "REGISTRY", "UnknownMethodError",
    "available_methods", "check_method_names", "create_method", "did_you_mean",
    "get_method_class", "known_names", "load_preset", "method_from_preset", "preset_file",
    "preset_names", "preset_resources", "unknown_method",
]
