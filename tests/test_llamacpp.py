"""The llama.cpp backend for real on the tiny model: convert, quantize, load, generate, tokenizer parity."""

import json

import pytest
from tinymodel import unsupported_copy

from enginebench.backends import get_backend
from enginebench.bench import TokenClock, parity_text, tokenizer_parity
from enginebench.errors import EngineBenchError
from enginebench.plan import build_plan, validate_config
from enginebench.prompts import PromptEncoder
from enginebench.stages import build_checkpoint, build_engine

PROMPTS = ["The function returns", "A module is an object that"]


def settings(quantization, kv_cache="f16"):
    return {"checkpoint_type": "f16", "quantization": quantization, "kv_cache": kv_cache, "flash_attn": True,
            "n_ctx": 1024, "n_gpu_layers": None, "offload_kqv": True}


@pytest.fixture(scope="module")
def built(tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("llamacpp")
    ckpt = build_checkpoint({"backend": "llamacpp", "settings": {"checkpoint_type": "f16"}}, tiny_model,
                            root / "gguf-f16")
    engines = {}
    for q in ("F16", "Q8_0", "Q4_K_M"):
        spec = {"backend": "llamacpp", "settings": settings(q), "checkpoint": "gguf-f16"}
        engines[q] = (build_engine(spec, tiny_model, root / "gguf-f16", root / q), root / q)
    return root, ckpt, engines


def test_checkpoint_is_a_gguf_with_the_snapshot_tokenizer(built):
    import gguf

    root, ckpt, _ = built
    assert ckpt["status"] == "ok" and ckpt["artifact_bytes"] > 0 and ckpt["timings"]["convert_s"] > 0
    reader = gguf.GGUFReader(str(root / "gguf-f16" / "model.gguf"))
    assert reader.get_field("general.architecture").contents() == "llama"
    assert reader.get_field("tokenizer.ggml.model").contents() == "llama"  # SentencePiece, from tokenizer.model


def test_quantized_engines_are_real_and_smaller(built):
    root, ckpt, engines = built
    f16, q8, q4 = (engines[q][0] for q in ("F16", "Q8_0", "Q4_K_M"))
    assert f16["work"] is False and "checkpoint GGUF is the engine" in f16["reason"]
    assert not (root / "F16" / "model.gguf").exists()  # no copy of the checkpoint
    assert q8["status"] == q4["status"] == "ok"
    assert ckpt["artifact_bytes"] > q8["artifact_bytes"] > q4["artifact_bytes"]
    assert q4["timings"]["quantize_s"] > 0


@pytest.mark.parametrize("quantization, kv_cache", [("F16", "f16"), ("Q8_0", "q8_0"), ("Q4_K_M", "q4_0")])
def test_engine_generates_and_tokenizes_like_the_snapshot(built, tiny_model, quantization, kv_cache):
    root, _, engines = built
    backend = get_backend("llamacpp")
    engine = backend.load(tiny_model, root / "gguf-f16", engines[quantization][1], settings(quantization, kv_cache),
                          threads=1, trust_remote_code=False)
    # Plain text: after a special token (a chat template's <s>) llama.cpp adds no SentencePiece space
    # prefix where transformers does, a real difference the bench records rather than hides.
    encoder = PromptEncoder(tiny_model, chat_template=False)
    parity = tokenizer_parity(engine, encoder, PROMPTS)
    assert parity["checked"] and parity["equal"], parity["mismatches"][:1]
    assert parity["texts"] == len(PROMPTS) + 1 and len(parity_text()) > 1000

    ids = [encoder.encode(p) for p in PROMPTS]
    batched = engine.generate(ids, 8, encoder.stop_ids, fixed_length=False)
    single = [engine.generate([i], 8, encoder.stop_ids, fixed_length=False)[0] for i in ids]
    assert batched == single  # sequences in one batch do not disturb each other
    assert all(0 < len(row) <= 8 for row in single)
    assert engine.counters()["engine"]["decode_tokens"] == len(single[-1]) - 1

    clock = TokenClock(1)
    streamed = engine.generate(ids[-1:], 8, encoder.stop_ids, fixed_length=True, on_token=clock)
    counters = engine.counters()["engine"]
    assert len(clock.arrivals[0]) == len(streamed[0]) == 8 and counters["decode_tokens"] == len(clock.itl()) == 7
    assert sum(clock.itl()) >= counters["decode_s"] > 0  # our clock spans the engine's own decode calls

    fixed = engine.generate(ids, 12, encoder.stop_ids, fixed_length=True)
    assert [len(r) for r in fixed] == [12, 12]
    assert engine.info()["kv_cache"] == kv_cache


def test_unsupported_architecture_is_a_recorded_failure(tiny_model, tmp_path):
    weird = unsupported_copy(tiny_model, tmp_path / "weird")
    manifest = build_checkpoint({"backend": "llamacpp", "settings": {"checkpoint_type": "f16"}}, weird,
                                tmp_path / "ckpt")
    assert manifest["status"] == "failed"
    assert "convert_hf_to_gguf.py failed" in manifest["reason"] and "NoSuchForCausalLM" in manifest["reason"]
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["manifest.json"]  # no half-written GGUF
    engine = build_engine({"backend": "llamacpp", "settings": settings("Q8_0"), "checkpoint": "gguf-f16"}, weird,
                          tmp_path / "ckpt", tmp_path / "engine")
    assert engine["status"] == "failed" and engine["reason"].startswith("checkpoint: convert_hf_to_gguf.py failed")


def test_config_rejects_unknown_file_and_kv_types():
    base = {"models": {"m": {"source": {"kind": "local", "path": "/x"}, "baseline": "a",
                             "variants": {"a": {"backend": "llamacpp", "quantization": "Q4_K_M"}}}},
            "prompts": ["x"]}
    validate_config(base)
    assert base["models"]["m"]["variants"]["a"] == {"backend": "llamacpp", "quantization": "Q4_K_M",
                                                    "checkpoint_type": "f16", "kv_cache": "f16",
                                                    "flash_attn": True, "n_ctx": 4096, "n_gpu_layers": None,
                                                    "offload_kqv": True}
    for key, value, listed in (("quantization", "Q3_K_XL", "'Q8_0'"), ("kv_cache", "fp8", "'q4_0'")):
        bad = json.loads(json.dumps(base))
        bad["models"]["m"]["variants"]["a"][key] = value
        with pytest.raises(EngineBenchError) as info:
            validate_config(bad)
        assert f"models.m.variants.a.{key}" in str(info.value) and listed in str(info.value)


def test_engines_of_one_checkpoint_type_share_it():
    cfg = {"models": {"m": {"source": {"kind": "local", "path": "/x"}, "baseline": "f16", "reference": "f16",
                            "variants": {"f16": {"backend": "llamacpp", "quantization": "F16"},
                                         "q4": {"backend": "llamacpp", "quantization": "Q4_K_M", "kv_cache": "q8_0"},
                                         "bf": {"backend": "llamacpp", "quantization": "Q8_0",
                                                "checkpoint_type": "bf16"}}}},
           "prompts": ["x"]}
    validate_config(cfg)
    plan = build_plan(cfg)
    assert sorted(c for _, c in plan.all_checkpoints()) == ["gguf-bf16", "gguf-f16"]
    assert plan.engine_spec("m", "q4")["checkpoint"] == "gguf-f16"


def test_kv_bytes_per_token_are_read_from_the_engine(built, tiny_model):
    """llama.cpp's KV bytes come from its own load log (its caches' size over their cells); a q4_0 cache
    takes 18/32 bytes per element where f16 takes 2. PyTorch's are its cache tensors' bytes."""
    from enginebench.roofline import kv_bytes_per_token

    root, _, engines = built
    config = json.loads((tiny_model / "config.json").read_text())
    context = list(range(5, 505))
    measured = {}
    for kv in ("f16", "q4_0"):
        engine = get_backend("llamacpp").load(tiny_model, root / "gguf-f16", engines["Q8_0"][1], settings("Q8_0", kv),
                                              threads=1, trust_remote_code=False)
        caches = engine.info()["kv_caches"]
        assert caches and all(c["cells"] >= 1024 for c in caches)  # n_ctx cells, as logged by llama.cpp
        measured[kv] = engine.kv_cache_bytes(context)
        assert measured[kv]["how"].startswith("llama.cpp's load log: ")
        per_cell = sum(c["bytes"] / c["cells"] for c in caches)
        assert measured[kv]["bytes"] == round(per_cell * len(context))
        assert per_cell == pytest.approx(kv_bytes_per_token(config, kv), rel=0.01)  # the tiny Llama: no SWA
    assert measured["q4_0"]["bytes"] / measured["f16"]["bytes"] == pytest.approx(18 / 32 / 2, rel=0.02)

    torch_engine = get_backend("torch").load(tiny_model, None, None, {"dtype": "float32", "compile": False},
                                             threads=1, trust_remote_code=False)
    torch_kv = torch_engine.kv_cache_bytes(context)
    assert torch_kv["bytes"] == kv_bytes_per_token(config, "float32") * len(context)
    assert "tensors after a forward pass" in torch_kv["how"]


def test_quality_at_depth_catches_a_quantized_kv_cache(built, tiny_model):
    """Late in a long window a q4_0 KV cache strays further from the reference than an f16 one."""
    from enginebench.quality import depth_quality, eval_text, eval_windows, window_logits
    from enginebench.quality_metrics import reference_distribution

    root, _, engines = built
    encoder = PromptEncoder(tiny_model, chat_template=False)
    reference = get_backend("torch").load(tiny_model, None, None, {"dtype": "float32", "compile": False},
                                          threads=1, trust_remote_code=False)
    long = [{"ids": ids, **reference_distribution(window_logits(reference, ids), ids[1:], 16)}
            for ids in eval_windows(encoder.tokenizer, eval_text(None)[0], 1, 1024)]
    depth = {kv: depth_quality(get_backend("llamacpp").load(tiny_model, root / "gguf-f16", engines["F16"][1],
                                                            settings("F16", kv), threads=1,
                                                            trust_remote_code=False), long)
             for kv in ("f16", "q4_0")}
    assert depth["f16"]["late_from"] == 512 and depth["f16"]["scored_tokens_late"] == 511
    assert depth["f16"]["kl_divergence_late"] < 0.01
    assert depth["q4_0"]["kl_divergence_late"] > 2 * depth["f16"]["kl_divergence_late"]
    assert depth["q4_0"]["top1_agreement_late"] <= depth["f16"]["top1_agreement_late"]


def test_a_banned_token_is_never_picked_and_the_next_best_is(built, tiny_model):
    """Fixed-length runs ban the stop ids: the greedy pick reads llama.cpp's logits in place and copies
    them only when its best token is banned; then the pick is the best allowed one."""
    import numpy as np

    root, _, engines = built
    engine = get_backend("llamacpp").load(tiny_model, root / "gguf-f16", engines["F16"][1], settings("F16"),
                                          threads=1, trust_remote_code=False)
    ids = PromptEncoder(tiny_model, chat_template=False).encode(PROMPTS[0])
    logits = engine.logits(ids)[-1]
    order = [int(i) for i in np.argsort(-logits)]
    assert engine.generate([ids], 1, [], fixed_length=True) == [[order[0]]]
    assert engine.generate([ids], 1, [order[0]], fixed_length=True) == [[order[1]]]
    assert engine.generate([ids], 1, [order[0], order[1]], fixed_length=True) == [[order[2]]]
    assert engine.generate([ids], 1, [order[5]], fixed_length=True) == [[order[0]]]  # banned, not best: no effect
