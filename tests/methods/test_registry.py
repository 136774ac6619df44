"""The method registry and the ``trajbench methods`` command."""

from __future__ import annotations

import subprocess
import sys

import pytest

from methods import REGISTRY, UnknownMethodError, available_methods, get_method_class
from methods.base import Method


def test_every_registered_method_imports_and_is_named_as_registered():
    for name in available_methods():
        cls = get_method_class(name)
        assert issubclass(cls, Method)
        assert cls.name == name


def test_misspelt_name_suggests_the_right_one():
    with pytest.raises(UnknownMethodError, match="Did you mean 'depth_warp'"):
        get_method_class("depth_wrap")


def test_unknown_option_is_rejected_with_known_ones_listed():
    with pytest.raises(ValueError, match="inpaint_radius"):
        get_method_class("depth_warp")({"inpaint_radus": 2})


def test_cli_lists_methods_and_suggests_on_typo():
    out = subprocess.run(
        [sys.executable, "-m", "benchmark.cli", "methods"], capture_output=True, text=True
    )
    assert out.returncode == 0
    listed = [line.split()[0] for line in out.stdout.splitlines()]
    assert listed == sorted(REGISTRY)
    bad = subprocess.run(
        [sys.executable, "-m", "benchmark.cli", "methods", "gt_rendr"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert "gt_render" in bad.stderr


def test_generate_resources_are_declared_by_each_preset(tmp_path):
    """A rule never lists method names: weight-free and tiny presets ask no GPU, diffusion
    presets one GPU and 32 GB (Wan 14B more), and a malformed declaration is refused."""
    from benchmark.stages.generate import DEFAULT_GENERATE_RESOURCES, PRESETS_DIR, preset_resources

    for name in ("gt_render", "depth_warp", "static"):
        assert preset_resources(name) == {"gpu": 0, "mem_mb": 4000}, name
    tiny = sorted(p.stem for p in PRESETS_DIR.glob("*_tiny.yaml"))
    assert "trajattn_tiny" in tiny and "trajattn_wan_tiny" in tiny
    for name in tiny:  # tiny random components run on CPU nodes
        assert preset_resources(name)["gpu"] == 0, name
    for name in ("trajattn", "cameractrl", "nvs_solver", "motionctrl", "motion_i2v"):
        assert preset_resources(name) == DEFAULT_GENERATE_RESOURCES == {"gpu": 1, "mem_mb": 32000}
    assert preset_resources("trajattn_wan")["mem_mb"] > 32000
    bad = tmp_path / "bad.yaml"
    bad.write_text("adapter: static\nresources: {gpus: 1}\n")
    with pytest.raises(ValueError, match="resources"):
        preset_resources(str(bad))
    bad.write_text("adapter: static\nresources: {gpu: -1}\n")
    with pytest.raises(ValueError, match="non-negative"):
        preset_resources(str(bad))


# ------------------------------------------------------------ one namespace, one suggestion


def test_presets_and_adapters_share_one_namespace_and_one_suggestion():
    """A typo of a preset name gets the same suggestion wherever it is looked up: the
    workflow's name check, the adapter lookup and the preset loader all use one lookup."""
    from methods import check_method_names, known_names, method_from_preset
    from methods.registry import PRESETS_DIR

    presets = {p.stem for p in PRESETS_DIR.glob("*.yaml")}
    assert set(known_names()) == presets | set(REGISTRY)
    messages = []
    for lookup in (lambda: check_method_names(["trajattn_tny"]),
                   lambda: get_method_class("trajattn_tny"),
                   lambda: method_from_preset("trajattn_tny")):
        with pytest.raises(UnknownMethodError) as info:
            lookup()
        messages.append(str(info.value))
    for message in messages:
        assert message.startswith("unknown method 'trajattn_tny'")
        assert "Did you mean 'trajattn_tiny'" in message  # a preset, not an adapter name
    check_method_names(["trajattn_tiny", "depth_warp", "methods.static:Static"])


def test_cli_describes_a_preset_and_its_adapter(capsys):
    from benchmark.cli import main

    assert main(["methods", "trajattn_tiny"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "trajattn_tiny: preset of adapter trajattn"
    assert "  tiny = True" in out and "trajattn: methods.trajattn:TrajectoryAttentionMethod" in out


# ----------------------------------------------------------------- adapters stand alone


def _project_imports(path) -> set[str]:
    """Every ``methods.*`` module a file imports, at module level or inside functions."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            if node.module == "methods":
                found.update(f"methods.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("methods.")}


def test_no_adapter_imports_another_adapter():
    """Shared code lives in modules that are no adapter (svd, warp_guidance, trajattn_common,
    cameractrl_parts), so adapters never import each other, not even inside a function."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    adapters = {REGISTRY[name].split(":")[0] for name in REGISTRY}
    for module in sorted(adapters):
        path = root / (module.replace(".", "/") + ".py")
        others = _project_imports(path) & (adapters - {module})
        assert not others, f"{module} imports adapter(s) {sorted(others)}"
    for part in sorted((root / "methods" / "cameractrl_parts").glob("*.py")):
        assert not _project_imports(part) & adapters, part.name


def test_diffusion_adapters_share_the_base_class_and_cache_their_pipeline(monkeypatch):
    """The SVD/Wan adapters build their pipeline through methods.svd.DiffusionMethod: built
    once, and a missing model is MethodUnavailable naming the download."""
    from methods.base import MethodUnavailable
    from methods.svd import SVD_OPTIONS, DiffusionMethod

    for name in ("trajattn", "trajattn_wan", "cameractrl", "nvs_solver"):
        cls = get_method_class(name)
        assert issubclass(cls, DiffusionMethod), name
        assert set(SVD_OPTIONS) - {"decode_chunk_size"} <= set(cls.default_conf), name
    method = get_method_class("nvs_solver")({"tiny": True, "device": "cpu", "dtype": "float32"})
    assert method.pipeline() is method.pipeline()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    missing = get_method_class("nvs_solver")({"base_model": "/nonexistent/svd", "device": "cpu"})
    with pytest.raises(MethodUnavailable, match="/nonexistent/svd"):
        missing.pipeline()
    assert missing._pipe is None  # nothing half-built is cached
