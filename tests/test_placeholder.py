"""Placeholder models (issue 20): a real architecture with seeded weights, speed only.

Unit tests of the weights and the tokenizer taken from a GGUF header, then the pipeline end to end on
a real tiny model and a placeholder of its architecture in one config.
"""

import json

import pytest
import recorded
import reportparse
from gguf_tokenizer import main as gguf_tokenizer_main
from snakemake_run import planned_jobs, snakemake, write_config

from enginebench.errors import EngineBenchError
from enginebench.io import read_json, sha256_file
from enginebench.placeholder import gguf_without_tensors
from enginebench.plan import build_plan, validate_config
from enginebench.snapshot import import_snapshot


def placeholder_spec(config, seed=0, dtype="float32", **more) -> dict:
    return {"source": {"kind": "placeholder", "config": str(config), "seed": seed, "dtype": dtype, **more},
            "trust_remote_code": False}


def weight_hashes(snapshot) -> dict[str, str]:
    return {f["path"]: f["sha256"] for f in read_json(snapshot / "manifest.json")["files"]
            if f["path"].endswith(".safetensors")}


def test_same_seed_same_weights_other_seed_other_weights(tiny_model, tmp_path):
    first = import_snapshot(placeholder_spec(tiny_model / "config.json"), tmp_path / "a", threads=2)
    again = import_snapshot(placeholder_spec(tiny_model), tmp_path / "b", threads=1)  # folder or file, 1 or 2 threads
    other = import_snapshot(placeholder_spec(tiny_model, seed=1), tmp_path / "c", threads=2)
    assert weight_hashes(tmp_path / "a") == weight_hashes(tmp_path / "b") != weight_hashes(tmp_path / "c")
    assert first["provenance"]["seed"] == 0 and other["provenance"]["seed"] == 1
    trained = sha256_file(tiny_model / "model.safetensors")
    assert trained not in weight_hashes(tmp_path / "a").values()  # not the trained weights
    # the tokenizer beside the config came along, llama.cpp's SentencePiece model too
    assert (tmp_path / "a" / "tokenizer.model").read_bytes() == (tiny_model / "tokenizer.model").read_bytes()
    assert first["provenance"]["parameters"] == again["provenance"]["parameters"] > 0


def test_a_placeholder_too_big_for_the_free_disk_stops_before_its_weights(tiny_model, tmp_path, monkeypatch):
    from collections import namedtuple

    from enginebench import disk

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(disk.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 10**6, 10**6))  # 1 MB free
    with pytest.raises(EngineBenchError, match=r"^disk: the placeholder snapshot's weights needs about [\d.]+ MB "
                                               r"\(\+20% headroom\), only 1.0 MB free under "):
        import_snapshot(placeholder_spec(tiny_model), tmp_path / "p", threads=1)
    assert list(tmp_path.iterdir()) == []


def test_placeholder_weights_have_the_architecture_and_stay_finite_in_float16(tiny_model, tmp_path):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    import_snapshot(placeholder_spec(tiny_model, dtype="float16"), tmp_path / "p", threads=2)
    trained, placeholder = load_file(tiny_model / "model.safetensors"), load_file(tmp_path / "p/model.safetensors")
    assert {k: v.shape for k, v in trained.items()} == {k: v.shape for k, v in placeholder.items()}
    assert all(v.dtype == torch.float16 for v in placeholder.values())
    norms = [k for k in placeholder if k.endswith("norm.weight")]
    assert norms and all(bool((placeholder[k] == 1).all()) for k in norms)
    std = float(placeholder["model.layers.0.mlp.up_proj.weight"].float().std())
    assert std == pytest.approx(json.loads((tiny_model / "config.json").read_text())["initializer_range"], rel=0.05)
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "p", dtype=torch.float16)
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([list(range(1, 200))])).logits
    assert torch.isfinite(logits).all()


def test_weights_are_named_and_shaped_as_on_the_hub(tmp_path):
    """transformers 5 fuses Mixtral's experts in memory (mlp.experts.gate_up_proj); checkpoints on the hub,
    and llama.cpp's converter, keep one w1/w2/w3 per expert: the placeholder writes the hub's layout."""
    from transformers import MixtralConfig

    from enginebench.placeholder import tensor_shapes

    MixtralConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=1, num_attention_heads=4,
                  num_key_value_heads=2, num_local_experts=2).save_pretrained(tmp_path)
    shapes = dict(tensor_shapes(tmp_path, trust_remote_code=False))
    assert shapes["model.layers.0.block_sparse_moe.experts.1.w1.weight"] == (48, 32)
    assert shapes["model.layers.0.block_sparse_moe.experts.1.w2.weight"] == (32, 48)
    assert not [name for name in shapes if "gate_up_proj" in name]


def test_missing_config_or_tokenizer_is_one_sentence(tiny_model, tmp_path):
    with pytest.raises(EngineBenchError, match="placeholder config not found: .*nope"):
        import_snapshot(placeholder_spec(tmp_path / "nope"), tmp_path / "x")
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "config.json").write_bytes((tiny_model / "config.json").read_bytes())
    with pytest.raises(EngineBenchError, match="no tokenizer beside"):
        import_snapshot(placeholder_spec(lone), tmp_path / "y")
    with pytest.raises(EngineBenchError, match="placeholder tokenizer not found"):
        import_snapshot(placeholder_spec(lone, tokenizer=str(tmp_path / "none.gguf")), tmp_path / "z")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()  # nothing half-written


def test_tokenizer_from_the_first_part_of_a_gguf(tiny_model, tmp_path):
    """A GGUF cut after its header (what a split download's first part holds) gives a tokenizer GGUF
    and, through it, the snapshot's tokenizer with every special token at its GGUF id."""
    import gguf

    full = tmp_path / "full.gguf"
    writer = gguf.GGUFWriter(str(full), "llama")
    tokens = ["<unk>", "<s>", "</s>", *[bytes([b]).decode("latin-1") for b in range(97, 123)], "ab", "abc"]
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * 3 + [-float(i) for i in range(len(tokens) - 3)])
    writer.add_token_types([gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
                           + [gguf.TokenType.NORMAL] * (len(tokens) - 3))
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_tensor("w", __import__("numpy").ones((1024, 1024), dtype="float32"))  # 4 MB of tensor data
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    part = tmp_path / "part-0000"
    part.write_bytes(full.read_bytes()[:64 * 1024])  # the header and a little of the data
    assert gguf_tokenizer_main([str(part), "--out", str(tmp_path / "tok.gguf")]) == 0
    reader = gguf.GGUFReader(str(tmp_path / "tok.gguf"))
    assert len(reader.tensors) == 0 and reader.get_field("tokenizer.ggml.tokens").contents() == tokens
    with pytest.raises(EngineBenchError, match="not a GGUF"), open(tiny_model / "config.json", "rb") as stream:
        gguf_without_tensors(stream, str(tiny_model / "config.json"), tmp_path / "x.gguf")

    manifest = import_snapshot(placeholder_spec(tiny_model, tokenizer=str(tmp_path / "tok.gguf")),
                               tmp_path / "snap")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "snap")
    assert len(tokenizer) == len(tokens)
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id) == (1, 2)
    assert (tmp_path / "snap/tokenizer.gguf").exists()  # for llama.cpp's checkpoint
    assert "tokenizer metadata of a GGUF" in manifest["provenance"]["tokenizer"]


def mixed_config(tiny_model) -> dict:
    return {
        "models": {
            "real": {"source": {"kind": "local", "path": str(tiny_model)}, "baseline": "fp32", "reference": "fp32",
                     "chat_template": False, "variants": {"fp32": {"backend": "torch", "dtype": "float32"}}},
            "shape": {"source": {"kind": "placeholder", "config": str(tiny_model), "seed": 7},
                      "baseline": "torch", "chat_template": False,
                      "variants": {"torch": {"backend": "torch", "dtype": "float32"},
                                   "llama-f16": {"backend": "llamacpp", "quantization": "F16"},
                                   "llama-q8_0-kv-q8_0": {"backend": "llamacpp", "quantization": "Q8_0",
                                                          "kv_cache": "q8_0"},
                                   "trtllm-fp8": {"backend": "trtllm", "qformat": "fp8"}}},
        },
        "prompts": ["The function returns", "A module is"],
        "bench": {"max_new_tokens": 6, "warmup": 0, "repetitions": 1, "load_repetitions": 1, "context_depths": [0, 64]},
        "samples": {"max_new_tokens": 4},
        "quality": {"windows": 2, "window_tokens": 64, "long_windows": 0},
    }


def test_a_reference_for_a_placeholder_model_is_a_config_error(tiny_model):
    config = mixed_config(tiny_model)
    config["models"]["shape"]["reference"] = "torch"
    validate_config(config)
    with pytest.raises(EngineBenchError, match="models.shape.reference: a placeholder model has no reference"):
        build_plan(config)


def test_plan_of_a_placeholder_model_has_no_quality_jobs(tiny_model, tmp_path):
    config = mixed_config(tiny_model)
    validate_config(config)
    plan = build_plan(config)
    assert plan.reference("shape") is None and plan.reference("real") == "fp32"
    assert plan.speed_only_models == ["shape"] and plan.quality_models == ["real"]
    assert plan.predicted_engines() == []  # no ModelOpt prediction of random weights
    done = snakemake(tmp_path, "-n", config=write_config(tmp_path, config))
    assert done.returncode == 0, done.stderr
    jobs = planned_jobs(done.stdout)
    assert ("reference", "results/real/reference/logprobs.json") in jobs
    assert not [j for j in jobs if j[0] == "reference" and "shape" in j[1]]
    assert sorted(o for r, o in jobs if r == "quality_not_applicable") == [
        f"results/shape/quality/{v}.json" for v in sorted(config["models"]["shape"]["variants"])]
    assert [o for r, o in jobs if r == "quality"] == ["results/real/quality/fp32.json"]


@pytest.mark.slow
def test_real_and_placeholder_model_in_one_run(tiny_model, tmp_path):
    config = mixed_config(tiny_model)
    done = snakemake(tmp_path, config=write_config(tmp_path, config))
    assert done.returncode == 0, done.stderr[-3000:]
    gate = read_json(tmp_path / "results/quality-gate.json")
    verdicts = {(e["model"], e["variant"]): e["verdict"] for e in gate["engines"]}
    assert verdicts[("real", "fp32")] == "PASS"
    assert {verdicts[("shape", v)] for v in ("torch", "llama-f16", "llama-q8_0-kv-q8_0")} == {"NOT APPLICABLE"}
    assert verdicts[("shape", "trtllm-fp8")] == "NOT RUN"  # not built here: that, not "not applicable"
    assert not gate["failed"]
    for variant in ("torch", "llama-f16", "llama-q8_0-kv-q8_0"):
        bench = read_json(tmp_path / f"results/shape/bench/{variant}.json")
        assert bench["status"] == "ok"
        runs = [b for rep in bench["raw"]["sweep"][0]["repetitions"] for b in rep["batches"]]
        assert runs and all(len(b["itl_s"]) == config["bench"]["max_new_tokens"] - 1 for b in runs)  # EOS ignored
        assert bench["tokenizer_parity"]["checked"] is (variant != "torch")
    validate_config(config)
    plan = build_plan(config)
    found = recorded.findings_of(tmp_path, plan, "shape")
    assert found["shown"] == {"torch", "llama-f16", "llama-q8_0-kv-q8_0"}  # every engine that ran, ranked by speed
    assert [sorted(ranking) for ranking in recorded.picks(found)] in ([sorted(found["shown"])] * 2, [])  # [] if busy
    report = (tmp_path / "results/report.md").read_text()  # the shape's answer says first that it is speed only
    answer = [line for line in reportparse.section(report, "Answer: shape").splitlines() if line.startswith("- ")]
    assert plan.speed_only("shape") in answer[0] and plan.speed_only("real") is None
    shape = report[report.index("\n## shape\n"):]
    share = reportparse.column(shape, "How fast: one request at a time", "% of bound")
    assert set(share) == found["shown"] and all(cell not in ("", "—") for cell in share.values())
