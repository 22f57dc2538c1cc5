"""Invariants of the code base, read from the source: generated code is fresh, the layering rules
(import-linter contracts in pyproject.toml, which `make lint` checks) catch a wrong import, the
strategy registry and the API agree."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ("tagllm/v1", "tagllm/internal/v1")


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


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache", "--no-logo"],
        cwd=root,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
    )


def test_a_transport_imported_inside_a_function_of_the_algorithm_breaks_a_contract(tmp_path):
    # A copy of the sources and the contracts: they hold there as they do here, then a gRPC
    # import inside a strategy's function breaks the rule that the algorithm knows no transport.
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    for package in ("tagllm", "services"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    kept = lint_imports(tmp_path)
    assert kept.returncode == 0, kept.stdout + kept.stderr

    strategy = tmp_path / "tagllm" / "strategies" / "implementations.py"
    strategy.write_text(strategy.read_text() + "\n\ndef stray():\n    import grpc\n\n    return grpc\n")
    broken = lint_imports(tmp_path)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "The algorithm imports neither gRPC nor Triton" in broken.stdout
    assert "tagllm.strategies.implementations -> grpc" in broken.stdout


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
