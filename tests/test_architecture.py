"""Layering rules of docs/architecture.md, checked on the source tree."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "r1lab"


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def files(sub: str) -> list[Path]:
    return sorted((SRC / sub).rglob("*.py"))


def test_algo_imports_torch_only():
    for f in files("algo"):
        for mod in imports_of(f):
            top = mod.split(".")[0]
            assert top in {"torch", "r1lab"} | set(sys.stdlib_module_names), (f, mod)
            assert not mod.startswith("r1lab.") or mod.startswith(
                ("r1lab.algo", "r1lab.registry", "r1lab.errors")
            ), (f, mod)


def test_rewards_sandbox_metrics_import_no_torch():
    paths = files("rewards") + files("sandbox") + [SRC / "eval" / "metrics.py"]
    for f in paths:
        if f.exists():
            assert not any(m.split(".")[0] == "torch" for m in imports_of(f)), f


def test_only_engines_touch_vllm_and_distributed():
    for f in SRC.rglob("*.py"):
        rel = f.relative_to(SRC).as_posix()
        if rel.startswith(("engines/", "utils/dist")):
            continue
        mods = imports_of(f)
        assert not any(m.split(".")[0] == "vllm" for m in mods), f
        assert not any(m.startswith("torch.distributed") for m in mods), f
        assert '"cuda"' not in f.read_text() and "'cuda'" not in f.read_text(), f


def test_import_r1lab_is_light():
    code = (
        "import sys, r1lab, r1lab.cli, r1lab.config, r1lab.registry;"
        "bad = [m for m in ('vllm', 'ray', 'deepspeed', 'torch', 'transformers') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_files_stay_small():
    big = [(f, n) for f in SRC.rglob("*.py") if (n := len(f.read_text().splitlines())) > 500]
    assert not big, big


def test_only_the_generator_factory_constructs_a_generator():
    """Every `Generator` class of engines/ (a class with a ``generate`` method, but the protocol)
    is constructed in engines/generators.py only: each stage gets its generator from
    `build_generator`."""
    engines = [ast.parse(f.read_text()) for f in files("engines")]
    classes = {
        c.name
        for tree in engines
        for c in ast.walk(tree)
        if isinstance(c, ast.ClassDef)
        and any(isinstance(m, ast.FunctionDef) and m.name == "generate" for m in c.body)
    } - {"Generator"}  # the protocol (engines/base.py); torch.Generator shares its name
    assert {"HFGenerator", "VLLMGenerator", "OpenAICompatGenerator"} <= classes
    builders = set()
    for f in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Call):
                fn = node.func
                name = fn.id if isinstance(fn, ast.Name) else getattr(fn, "attr", None)
                if name in classes:
                    builders.add(f.relative_to(SRC).as_posix())
    assert builders == {"engines/generators.py"}


def test_cpu_speed_code_has_one_entry_point_and_one_switch():
    """The CPU-speed code lives in engines/cpu/; outside it, code calls `r1lab.engines.cpu`
    (`enable`, `mode`) or uses the decoder (`cpu.kv_decode`), never a piece directly; and the
    pieces read one environment switch, R1LAB_CPU."""
    import re

    for f in SRC.rglob("*.py"):
        if f.relative_to(SRC).as_posix().startswith("engines/cpu/"):
            continue
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "r1lab.engines.cpu":
                assert {a.name for a in node.names} <= {"enable", "mode", "kv_decode"}, f
        for mod in imports_of(f):
            assert not mod.startswith("r1lab.engines.cpu.") or mod.endswith(".kv_decode"), (f, mod)
    switches = set()
    for f in (SRC / "engines" / "cpu").rglob("*.py"):
        switches |= set(re.findall(r"R1LAB_[A-Z_]+", f.read_text())) - {"R1LAB_CACHE"}
    assert switches == {"R1LAB_CPU"}, switches
