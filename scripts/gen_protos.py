#!/usr/bin/env python3
"""Generate the Python API code from protos/ (`make protos`): the public tagllm.v1 package
into tagllm/v1, the internal services' tagllm.internal.v1 into tagllm/internal/v1.

`--out DIR` writes elsewhere; the test suite uses it to check that the committed code is fresh.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import google.rpc
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"


def generate(out: Path) -> list[Path]:
    protos = sorted(PROTO_ROOT.glob("tagllm/**/v1/*.proto"))
    googleapis = Path(google.rpc.__path__[0]).parent.parent
    well_known = Path(protoc.__file__).parent / "_proto"
    out.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{googleapis}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *[str(p.relative_to(PROTO_ROOT)) for p in protos],
    ]
    cwd = os.getcwd()
    os.chdir(PROTO_ROOT)
    try:
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
    finally:
        os.chdir(cwd)
    written = []
    for name in ("tagllm.v1", "tagllm.internal.v1"):
        package = out.joinpath(*name.split("."))
        (package / "__init__.py").write_text(
            f'"""Generated gRPC/protobuf code for {name} (make protos)."""\n'
        )
        written += sorted(package.iterdir())
    (out / "tagllm" / "internal" / "__init__.py").write_text('"""APIs of the internal services."""\n')
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--out", type=Path, default=ROOT, help="root the generated packages are written under"
    )
    args = parser.parse_args()
    for path in generate(args.out):
        print(path.relative_to(args.out))


if __name__ == "__main__":
    sys.exit(main())
