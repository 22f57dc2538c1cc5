"""Invariants of the code base: generated code is fresh, the algorithm stays free of transports."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_api_code_is_fresh(tmp_path):
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--out", str(tmp_path)], check=True
    )
    generated = sorted(p.name for p in (tmp_path / "tagllm" / "v1").iterdir())
    committed = sorted(p.name for p in (ROOT / "tagllm" / "v1").iterdir() if p.suffix in (".py", ".pyi"))
    assert generated == committed
    for name in generated:
        fresh = (tmp_path / "tagllm" / "v1" / name).read_text()
        assert fresh == (ROOT / "tagllm" / "v1" / name).read_text(), (
            f"tagllm/v1/{name} is stale: run make protos"
        )


def test_the_algorithm_imports_neither_grpc_nor_triton():
    code = (
        "import sys\n"
        "import tagllm.strategies, tagllm.vocab, tagllm.parsing, tagllm.prompts\n"
        "import tagllm.mllm.transformers_backend\n"
        "import tagllm.mllm.serving, tagllm.imaging\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('grpc', 'tritonclient', 'pytriton'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
