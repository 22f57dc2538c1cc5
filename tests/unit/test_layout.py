"""Invariants of the code base, read from the source: generated code is fresh, the library does not
reach into the service processes, the algorithm stays free of transports, the strategy registry
and the API agree."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ("tagllm/v1", "tagllm/internal/v1")
# The algorithm: no transport, no model-server client, no process code.
ALGORITHM = ("tagllm/vocab", "tagllm/prompts", "tagllm/parsing", "tagllm/strategies")
TRANSPORTS = {
    "grpc",
    "grpc_health",
    "grpc_reflection",
    "tritonclient",
    "pytriton",
    "triton_python_backend_utils",
}


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-local imports included)."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


def library_files(*folders: str) -> list[Path]:
    files = []
    for folder in folders or ("tagllm",):
        files += [
            p
            for p in (ROOT / folder).rglob("*.py")
            if not any(str(p.relative_to(ROOT)).startswith(g) for g in GENERATED)
        ]
    return sorted(files)


def test_generated_api_code_is_fresh(tmp_path):
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--out", str(tmp_path)], check=True
    )
    for package in GENERATED:
        generated = sorted(p.name for p in (tmp_path / package).iterdir())
        committed = sorted(p.name for p in (ROOT / package).iterdir() if p.suffix in (".py", ".pyi"))
        assert generated == committed
        for name in generated:
            fresh = (tmp_path / package / name).read_text()
            assert fresh == (ROOT / package / name).read_text(), f"{package}/{name} is stale: run make protos"


def test_the_library_never_imports_the_services():
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in imported_modules(path) if m.split(".")[0] == "services"
        )
        for path in library_files()
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_algorithm_imports_neither_grpc_nor_triton():
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in imported_modules(path) if m.split(".")[0] in TRANSPORTS
        )
        for path in library_files(*ALGORITHM)
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    # In tagllm/mllm only the Triton client speaks to a transport.
    speaking = sorted(
        path.name
        for path in library_files("tagllm/mllm")
        if any(m.split(".")[0] in TRANSPORTS for m in imported_modules(path))
    )
    assert speaking == ["triton_client.py"]


def test_the_import_check_sees_imports_inside_functions(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from services.refiner import server\n    import grpc\n")
    assert imported_modules(sample) == {"services.refiner", "grpc"}


def test_the_proto_enum_and_the_strategy_registry_match_one_to_one():
    from tagllm.convert import strategy_from_proto, strategy_to_proto
    from tagllm.strategies import DEFAULT_STRATEGY, STRATEGIES
    from tagllm.v1 import common_pb2

    enum_names = set(common_pb2.Strategy.keys()) - {"STRATEGY_UNSPECIFIED"}
    assert enum_names == {f"STRATEGY_{name.upper()}" for name in STRATEGIES}
    for name in STRATEGIES:
        assert strategy_from_proto(strategy_to_proto(name)) == name
    assert strategy_from_proto(common_pb2.STRATEGY_UNSPECIFIED) == DEFAULT_STRATEGY
    with pytest.raises(ValueError, match="unknown strategy"):
        strategy_from_proto(99)


def test_a_strategy_missing_from_the_proto_enum_fails_the_check():
    from tagllm.convert import strategy_to_proto
    from tagllm.strategies import STRATEGIES, register

    @register
    class Unlisted:
        name = "unlisted"
        stages = ("all",)

        def tag(self, run, image):
            raise NotImplementedError

    try:
        with pytest.raises(ValueError):
            strategy_to_proto("unlisted")
    finally:
        del STRATEGIES["unlisted"]


def test_the_vocabulary_package_stands_below_the_engine():
    allowed = ("tagllm.vocab", "tagllm.caching")
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in imported_modules(path) if m.startswith("tagllm") and not m.startswith(allowed)
        )
        for path in library_files("tagllm/vocab")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_cli_builds_its_help_without_torch_or_transformers():
    # Help and argument errors must answer at once; the heavy libraries load only for the
    # commands that use them.
    code = (
        "import sys\n"
        "from tagllm.cli.main import build_parser\n"
        "parser = build_parser()\n"
        "heavy = {'torch', 'transformers', 'tritonclient'}\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in heavy)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
