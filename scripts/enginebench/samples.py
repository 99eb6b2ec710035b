"""Samples stage: each engine's greedy answers to the prompts, kept for reading and for quality."""

from __future__ import annotations

from .backends import get_backend
from .cli import progress
from .prompts import PromptEncoder


def run_samples(spec: dict, paths: dict, threads: int) -> dict:
    backend = get_backend(spec["backend"])
    trust = spec["trust_remote_code"]
    encoder = PromptEncoder(paths["snapshot"], chat_template=spec["chat_template"], trust_remote_code=trust)
    engine = backend.load(paths["snapshot"], paths["checkpoint"], paths["engine"], spec["settings"],
                          threads=threads, trust_remote_code=trust)
    samples = []
    for i, prompt in enumerate(spec["prompts"]):
        progress(f"sample {i + 1}/{len(spec['prompts'])}")
        ids = encoder.encode(prompt)
        out = engine.generate([ids], spec["samples"]["max_new_tokens"], encoder.stop_ids, fixed_length=False)[0]
        samples.append({"prompt": prompt, "prompt_ids": ids, "output_ids": out, "text": encoder.decode(out)})
    return {"stage": "samples", "status": "ok", "spec": spec, "uses_chat_template": encoder.uses_chat_template,
            "samples": samples}
