#!/usr/bin/env python3
"""Generate the Python API code in tagllm/v1 from protos/tagllm/v1 (`make protos`).

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
    protos = sorted(PROTO_ROOT.glob("tagllm/v1/*.proto"))
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
    package = out / "tagllm" / "v1"
    (package / "__init__.py").write_text('"""Generated gRPC/protobuf code for tagllm.v1 (make protos)."""\n')
    return sorted(package.iterdir())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT, help="root the tagllm/v1 package is written under")
    args = parser.parse_args()
    for path in generate(args.out):
        print(path.relative_to(args.out))


if __name__ == "__main__":
    sys.exit(main())
