import copy
import re

import pytest

from enginebench.errors import EngineBenchError
from enginebench.plan import build_plan, load_config, spec_json, validate_config

BASE = {
    "models": {
        "tiny": {
            "source": {"kind": "local", "path": "/models/tiny"},
            "baseline": "fp32",
            "reference": "fp32",
            "variants": {"fp32": {"backend": "torch", "dtype": "float32"},
                         "bf16": {"backend": "torch", "dtype": "bfloat16"}},
        }
    },
    "prompts": ["Hello"],
}


def config(**patch):
    cfg = copy.deepcopy(BASE)
    for dotted, value in patch.items():
        node = cfg
        *parents, last = dotted.split("__")
        for key in parents:
            node = node[key]
        node[last] = value
    return cfg


def test_defaults_are_filled():
    cfg = config()
    validate_config(cfg)
    assert cfg["bench"] == {"max_new_tokens": 32, "batch_sizes": [1, 2, 4, 8], "warmup": 1, "repetitions": 3,
                            "load_repetitions": 2, "context_depths": [0, 1024]}
    assert cfg["samples"] == {"max_new_tokens": 64}
    assert cfg["models"]["tiny"]["trust_remote_code"] is False
    assert cfg["models"]["tiny"]["chat_template"] is True
    assert cfg["quality"] == {"eval_text": None, "windows": 8, "window_tokens": 256, "long_windows": 2,
                              "long_window_tokens": 1024, "top_k": 32, "fail_on_gate": False,
                              "gate": {"max_perplexity_ratio": 1.05, "max_kl_divergence": 0.05,
                                       "min_top1_agreement": 0.9, "min_greedy_agreement": 0.15,
                                       "max_repetition_increase": 0.12}}


def test_default_config_file_is_valid(repo):
    cfg = load_config(repo / "config" / "config.yaml")
    plan = build_plan(cfg)
    assert len(plan.all_engines()) >= 2


def test_reference_defaults_to_the_torch_variant_at_the_packaged_snapshots_precision(repo):
    cfg = load_config(repo / "config" / "config.yaml")
    del cfg["models"]["gemma3-270m"]["reference"]
    assert cfg["models"]["gemma3-270m"]["source"]["dtype"] == "bfloat16"
    assert build_plan(cfg).reference("gemma3-270m") == "torch-bf16"


def test_gate_thresholds_do_not_define_quality_results():
    def plan(**quality):
        cfg = config(quality=quality)
        validate_config(cfg)
        return build_plan(cfg)

    loose, strict, fewer_windows = plan(), plan(gate={"max_kl_divergence": 0.001}), plan(windows=4)
    assert spec_json(loose.quality_spec("tiny", "bf16")) == spec_json(strict.quality_spec("tiny", "bf16"))
    assert spec_json(loose.reference_spec("tiny")) == spec_json(strict.reference_spec("tiny"))
    assert loose.gate_spec() != strict.gate_spec()
    assert spec_json(fewer_windows.reference_spec("tiny")) != spec_json(loose.reference_spec("tiny"))


@pytest.mark.parametrize("patch, words", [
    ({"bench": {"repetitons": 3}}, ["bench", "repetitons"]),  # typo'd key
    ({"bench": {"repetitions": "three"}}, ["bench.repetitions", "'three'"]),  # wrong type
    ({"models__tiny__variants__fp32__dtype": "float33"}, ["models.tiny.variants.fp32", "float33"]),
    ({"models__tiny__variants__fp32__backend": "tensorrt"}, ["models.tiny.variants.fp32.backend", "tensorrt"]),
    ({"models__tiny__source__kind": "s3"}, ["models.tiny.source.kind", "s3"]),
    ({"models__tiny__source__pth": "/x"}, ["models.tiny.source", "pth"]),
    ({"models__Bad/Slug": BASE["models"]["tiny"]}, ["models", "Bad/Slug"]),
])
def test_schema_errors_name_the_key(patch, words):
    with pytest.raises(EngineBenchError) as info:
        validate_config(config(**patch))
    message = str(info.value)
    assert message.startswith("config key ")
    for word in words:
        assert word in message


def test_unknown_baseline_is_rejected():
    cfg = config(models__tiny__baseline="fp16")
    validate_config(cfg)
    with pytest.raises(EngineBenchError, match="models.tiny.baseline: 'fp16' is not one of its variants"):
        build_plan(cfg)


def test_torch_variants_share_one_checkpoint():
    cfg = config()
    validate_config(cfg)
    plan = build_plan(cfg)
    assert plan.all_checkpoints() == [("tiny", "torch")]
    settings = {"dtype": "bfloat16", "compile": False, "max_cache_len": 512}
    assert plan.engine_spec("tiny", "bf16") == {"backend": "torch", "checkpoint": "torch", "settings": settings}


def test_changing_one_variant_changes_only_its_specs():
    before, after = config(), config(models__tiny__variants__bf16__dtype="float16")
    for cfg in (before, after):
        validate_config(cfg)
    p1, p2 = build_plan(before), build_plan(after)
    assert spec_json(p1.engine_spec("tiny", "fp32")) == spec_json(p2.engine_spec("tiny", "fp32"))
    assert spec_json(p1.engine_spec("tiny", "bf16")) != spec_json(p2.engine_spec("tiny", "bf16"))
    assert p1.checkpoint_spec("tiny", "torch") == p2.checkpoint_spec("tiny", "torch")
    assert spec_json(p1.snapshot_spec("tiny")) == spec_json(p2.snapshot_spec("tiny"))


def test_spec_json_is_canonical():
    assert spec_json({"b": 1, "a": [1, 2]}) == spec_json({"a": [1, 2], "b": 1}) == '{"a":[1,2],"b":1}'


def test_missing_config_file_is_clear(tmp_path):
    with pytest.raises(EngineBenchError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_single_stream_is_always_in_the_batch_sweep():
    cfg = config(bench={"batch_sizes": [8, 2]})
    validate_config(cfg)
    build_plan(cfg)
    assert cfg["bench"]["batch_sizes"] == [1, 2, 8]


@pytest.mark.parametrize(("variant", "limit"), [
    ({"backend": "llamacpp", "quantization": "Q8_0"}, "64, the largest that models.tiny.variants.big takes "
                                                      "(the 64 sequences of one llama.cpp context)"),
    ({"backend": "trtllm", "build": {"max_batch_size": 4}}, "4, the largest that models.tiny.variants.big takes "
                                                            "(its build.max_batch_size)"),
])
def test_a_batch_size_an_engine_cannot_take_is_a_config_error(variant, limit):
    cfg = config(bench={"batch_sizes": [1, 128]})
    cfg["models"]["tiny"]["variants"]["big"] = variant
    validate_config(cfg)
    expected = r"^config key bench.batch_sizes: batch size 128 exceeds " + re.escape(limit)
    with pytest.raises(EngineBenchError, match=expected):
        build_plan(cfg)


def test_engine_build_options_do_not_re_run_the_fake_quant_prediction():
    def plan_with(max_batch_size):
        cfg = config()
        cfg["models"]["tiny"]["variants"]["fp8"] = {"backend": "trtllm", "qformat": "fp8",
                                                    "build": {"max_batch_size": max_batch_size}}
        validate_config(cfg)
        return build_plan(cfg)

    small, large = plan_with(8), plan_with(16)
    assert small.engine_spec("tiny", "fp8") != large.engine_spec("tiny", "fp8")
    assert spec_json(small.predicted_spec("tiny", "fp8")) == spec_json(large.predicted_spec("tiny", "fp8"))
    assert small.predicted_spec("tiny", "fp8")["settings"]["qformat"] == "fp8"
