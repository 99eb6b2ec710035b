"""GPU peers, from recorded bench results (measures nothing itself): llama.cpp on the GPU against the
same engine on the CPU, single-stream tokens/s; PyTorch compiled against eager, single-stream and at
the largest batch. Goal: compiled >= 3x eager single-stream on a GPU.

    python scripts/bench_gpu_peers.py --gpu docs/gpu-report/gemma3-270m/bench \
        --cpu docs/default-report/gemma3-270m/bench
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from enginebench.bench import at_batch
from enginebench.io import read_json


def load(folder: Path) -> dict[str, dict]:
    results = {p.stem: read_json(p) for p in sorted(Path(folder).glob("*.json"))}
    return {name: r for name, r in results.items() if r.get("status", "ok") == "ok"}


def rate(result: dict, batch: int | None = 1) -> str:
    entry = at_batch(result["metrics"], batch)["tokens_per_s"]
    return f"{entry['median']:.1f} tok/s ({entry['min']:.1f}-{entry['max']:.1f}, n={entry['n']})"


def median(result: dict, batch: int | None = 1) -> float:
    return at_batch(result["metrics"], batch)["tokens_per_s"]["median"]


def where(result: dict) -> str:
    info = result["engine_info"]
    gpu = next(iter(result["environment"]["gpus"]), {}).get("name")
    return f"{info.get('device', '?')}" + (f" [{gpu}]" if gpu and str(info.get("device")).startswith("cuda") else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu", required=True, type=Path, help="bench results of the GPU run")
    parser.add_argument("--cpu", required=True, type=Path, help="bench results of a CPU run of the same engines")
    args = parser.parse_args(argv)
    gpu, cpu = load(args.gpu), load(args.cpu)
    if not gpu:
        print(f"no bench results in {args.gpu}")
        return 1
    print("llama.cpp, single-stream tokens/s: GPU run vs CPU run of the same engine")
    llama = sorted(n for n in gpu if gpu[n]["spec"]["backend"] == "llamacpp")
    if not llama:
        print("  no llama.cpp result in the GPU run")
    for name in llama:
        line = f"  {name}: {rate(gpu[name])} on {where(gpu[name])}"
        if name in cpu:
            line += f" vs {rate(cpu[name])} on {where(cpu[name])} -> {median(gpu[name]) / median(cpu[name]):.2f}x"
        else:
            line += " (no CPU result of this engine)"
        print(line)
    print("PyTorch compiled vs eager (same dtype), GPU run")
    pairs = [(n, e) for n, r in gpu.items() if r["spec"]["backend"] == "torch" and r["spec"]["settings"].get("compile")
             for e, q in gpu.items() if q["spec"]["backend"] == "torch" and not q["spec"]["settings"].get("compile")
             and q["spec"]["settings"]["dtype"] == r["spec"]["settings"]["dtype"]]
    for compiled, eager in pairs:
        single = median(gpu[compiled]) / median(gpu[eager])
        largest = at_batch(gpu[compiled]["metrics"])["batch_size"]
        print(f"  {compiled} vs {eager} on {where(gpu[compiled])}:")
        print(f"    single-stream: {rate(gpu[compiled])} vs {rate(gpu[eager])} -> {single:.2f}x "
              f"({'meets' if single >= 3 else 'misses'} the 3x goal)")
        print(f"    batch {largest}: {rate(gpu[compiled], None)} vs {rate(gpu[eager], None)} -> "
              f"{median(gpu[compiled], None) / median(gpu[eager], None):.2f}x")
        compile_s = gpu[compiled]["metrics"].get("compile_s")
        if compile_s:
            print(f"    compile + capture, first run of each batch size: {compile_s['value']:.1f} s "
                  f"({', '.join(f'b={k}: {v:.1f} s' for k, v in compile_s['by_batch_size'].items())})")
    if not pairs:
        print("  no compiled/eager pair of the same dtype in the GPU results")
    return 0


if __name__ == "__main__":
    sys.exit(main())
