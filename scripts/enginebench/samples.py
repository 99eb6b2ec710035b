"""Samples stage: each engine's greedy answers to the prompts, kept for reading and for quality."""

from __future__ import annotations

from .progress import progress
from .stages import open_engine


def run_samples(spec: dict, paths: dict, threads: int) -> dict:
    _, encoder, engine = open_engine(spec, paths, threads)
    return {"stage": "samples", "status": "ok", "spec": spec, "uses_chat_template": encoder.uses_chat_template,
            "samples": generate_samples(engine, encoder, spec)}


def generate_samples(engine, encoder, spec: dict) -> list[dict]:
    samples = []
    for i, prompt in enumerate(spec["prompts"]):
        progress(f"sample {i + 1}/{len(spec['prompts'])}")
        ids = encoder.encode(prompt)
        out = engine.generate([ids], spec["samples"]["max_new_tokens"], encoder.stop_ids, fixed_length=False)[0]
        samples.append({"prompt": prompt, "prompt_ids": ids, "output_ids": out, "text": encoder.decode(out)})
    return samples
