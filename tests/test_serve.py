"""Serving under load (issue 24) on the tiny model: a real llama-server (`make llama-server`) and the real
GuideLLM. The served answers must equal the engine's; a server told another chat template, one that does
not come up and one that dies mid-sweep each give a record with the reason and no figure; no server
process outlives its stage."""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
from pathlib import Path

import cliflow
import pytest
import recorded
import samples as samples_cli
import serve as serve_cli
from snakemake_run import planned_jobs, snakemake, write_config

from enginebench import paths, report_serve, serve
from enginebench import results as records
from enginebench.backends.llamacpp_backend import LlamaCppBackend
from enginebench.errors import EngineBenchError
from enginebench.plan import build_plan, spec_json, validate_config
from enginebench.serve_commands import step_load

pytestmark = pytest.mark.slow

SERVE = {"enabled": True, "slots": 2, "concurrency": [1, 2], "requests": 4, "warmup_requests": 1, "repetitions": 2,
         "prompt_tokens": {"min": 16, "max": 32}, "output_tokens": 8, "slo": {"ttft_ms": 2000, "itl_ms": 500}}


def serve_config(chat_template: bool = True) -> dict:
    return {
        "models": {"tiny": {"source": {"kind": "local", "path": "/nonexistent"}, "baseline": "fp32",
                            "reference": "fp32", "chat_template": chat_template,
                            "variants": {"fp32": {"backend": "torch", "dtype": "float32"},
                                         "llama-f16": {"backend": "llamacpp", "quantization": "F16"}}}},
        "prompts": ["The function returns", "A module is"],
        "bench": {"max_new_tokens": 4, "warmup": 1, "repetitions": 1, "load_repetitions": 1, "batch_sizes": [1, 2]},
        "samples": {"max_new_tokens": 8},
        "quality": {"windows": 2, "window_tokens": 64},
        "serve": copy.deepcopy(SERVE),
    }


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def served_run(tmp_path_factory):
    """The whole pipeline with serving on, for a tiny model whose tokenizer puts no space before the text
    (tinymodel.make_tokenizer: llama-server and transformers then tokenize its chat template alike):
    (root, plan)."""
    from tinymodel import make_tiny_llama

    model = make_tiny_llama(tmp_path_factory.mktemp("tiny-serve") / "tiny", dummy_prefix=False)
    root = tmp_path_factory.mktemp("served")
    plan = cliflow.run_pipeline(serve_config(), model, root)
    return root, plan


@pytest.mark.parametrize("variant", ["llama-f16", "fp32"])
def test_the_served_engine_answers_as_the_engine_and_its_load_is_swept(served_run, variant):
    """llama-server for the llama.cpp engine, transformers serve (continuous batching) for the torch one."""
    root, plan = served_run
    record = records.read(root / paths.SERVE.format(model="tiny", variant=variant), "serve")
    assert record["status"] == "ok", record.get("reason")
    check = record["check"]
    assert check["passed"] and check["api"] == "chat completions"
    assert [a["served"] for a in check["answers"]] == [a["engine"] for a in check["answers"]]
    assert all(a["served_prompt_tokens"] == a["engine_prompt_tokens"] for a in check["answers"])
    assert [s["concurrency"] for s in record["steps"]] == SERVE["concurrency"]
    assert len(record["sweeps"]) == SERVE["repetitions"]  # every sweep kept; the steps are their medians
    for step, *runs in zip(record["steps"], *record["sweeps"], strict=True):
        assert step["sweeps"] == SERVE["repetitions"] and step["completed"] == sum(r["completed"] for r in runs)
        assert step["requests_per_s_summary"]["values"] == [r["requests_per_s"] for r in runs]
        for run in runs:  # every request got the fixed output length (transformers serve: its generation config)
            assert run["output_tokens_per_s"] * run["duration_s"] == pytest.approx(
                run["completed"] * SERVE["output_tokens"])
    for step in record["steps"]:
        # GuideLLM counts every request overlapping its window: the warm-up ones too at 2 in flight
        assert 0 < step["completed"] <= (SERVE["requests"] + SERVE["warmup_requests"]) * SERVE["repetitions"]
        assert step["errored"] == 0
        assert step["requests_per_s"] > 0 and step["output_tokens_per_s"] > 0
        assert step["ttft_ms"]["p50"] <= step["ttft_ms"]["p90"] <= step["ttft_ms"]["p99"]
    assert not alive(record["server"]["pid"])
    server = record["server"]["command"]
    # transformers serve by the module of the transformers this Python imports (not a console script beside it)
    assert (server[4:6] == ["-m", "transformers.cli.transformers"] and "--continuous-batching" in server
            ) if variant == "fp32" else "--parallel" in server


def test_a_model_without_chat_template_is_served_through_text_completions(tiny_model, tmp_path):
    config = serve_config(chat_template=False)
    config["models"]["tiny"]["variants"].pop("fp32")
    config["models"]["tiny"].update(baseline="llama-f16", reference="llama-f16")
    cliflow.run_pipeline(config, tiny_model, tmp_path, bench=False)
    record = records.read(tmp_path / paths.SERVE.format(model="tiny", variant="llama-f16"), "serve")
    assert record["status"] == "ok", record.get("reason")
    assert record["check"]["api"] == "text completions" and record["check"]["passed"]
    assert all(s["completed"] > 0 and s["errored"] == 0 for s in record["steps"])


def test_the_report_ranks_only_what_was_served_and_checked(served_run):
    root, plan = served_run
    serving = recorded.findings_of(root, plan, "tiny")["answer"]["serving"]
    # the SLO is loose enough for the tiny model
    assert sorted(r["variant"] for r in serving["ranking"]) == ["fp32", "llama-f16"]
    assert not serving["not_served"] and not serving["differs"]
    found = recorded.findings_of(root, plan, "tiny")
    assert serving["ranking"][0]["summary"]["n"] == SERVE["repetitions"]  # ranked on every sweep's figures
    section = report_serve.serving_section(found["results"], plan.config["serve"], "tiny")
    assert section["sweep_counts"] == {"fp32": SERVE["repetitions"], "llama-f16": SERVE["repetitions"]}  # records
    text = (root / paths.REPORT).read_text()
    assert "### Serving under load" in text and "| In flight |" in text
    assert (root / paths.FIGURE.format(model="tiny", figure="serving")).stat().st_size > 0


def run_serve(root, plan, out_name: str, speed_only: str | None = None, samples: Path | None = None,
              variant: str = "llama-f16", snapshot: Path | None = None) -> dict:
    """The serve CLI once more on one of the pipeline's engines (llama.cpp's unless named), into another
    file (as for placeholder weights where `speed_only` is given; against other samples where `samples`
    is given; on another snapshot where `snapshot` is given)."""
    model = "tiny"
    engine = plan.engines[(model, variant)]
    out = root / "again" / f"{out_name}.json"
    out.parent.mkdir(exist_ok=True)
    assert serve_cli.main([
        "--spec", spec_json({**plan.serve_spec(model, variant), "speed_only": speed_only}),
        "--snapshot", str(snapshot or root / paths.SNAPSHOT.format(model=model)),
        "--checkpoint", str(root / paths.CHECKPOINT.format(model=model, checkpoint=engine.checkpoint)),
        "--engine", str(root / paths.ENGINE.format(model=model, variant=variant)), "--threads", "2",
        "--samples", str(samples or root / paths.SAMPLES.format(model=model, variant=variant)),
        "--out", str(out)]) == 0
    return records.read(out, "serve")


def test_a_poisson_sweep_offers_each_configured_rate(served_run):
    """serve.profile poisson: GuideLLM's Poisson profile (the stage refuses a step of another strategy), one
    step per offered rate (an open loop: arrivals do not wait for answers); the steps are keyed by the rate,
    and the report's column says so."""
    root, plan = served_run
    rates = [1.5, 3.0]
    config = copy.deepcopy(plan.config)
    config["serve"].update(profile="poisson", rates=rates, repetitions=1)
    poisson = build_plan(config)
    assert poisson.serve_spec("tiny", "llama-f16")["serve"]["rates"] == rates
    record = run_serve(root, poisson, "poisson")
    assert record["status"] == "ok", record.get("reason")
    assert [s["rate"] for s in record["steps"]] == rates and all("concurrency" not in s for s in record["steps"])
    assert all(s["completed"] > 0 and s["errored"] == 0 for s in record["steps"])
    assert [step_load(s) for s in record["steps"]] == [("Offered (requests/s)", r) for r in rates]
    assert serve.step_of({"type_": "poisson", "rate": 2.0}) == {"rate": 2.0}
    with pytest.raises(serve.ServerError, match="'constant' strategy"):  # GuideLLM's other rate profile
        serve.step_of({"type_": "constant", "rate": 2.0})


def test_placeholder_weights_record_the_answers_and_check_only_the_prompt_lengths(served_run, monkeypatch, tmp_path):
    root, plan = served_run
    why = "placeholder weights (seed 0): speed and memory only, no quality"
    samples = records.read(root / paths.SAMPLES.format(model="tiny", variant="llama-f16"), "samples")
    first = samples["samples"][0]["output_ids"]
    first[0] ^= 1  # another first token: an answer the server will not give
    changed = tmp_path / "samples.json"
    changed.write_text(json.dumps(samples))
    record = run_serve(root, plan, "placeholder", speed_only=why, samples=changed)
    assert record["status"] == "ok", record.get("reason")
    check = record["check"]
    assert not check["compared"] and check["not_compared"] == why and check["passed"]
    assert check["equal"] == len(check["answers"]) - 1 and record["steps"]
    assert run_serve(root, plan, "compared", samples=changed)["status"] == "failed"  # real weights: FAIL
    original = LlamaCppBackend.server  # another chat template still fails: the prompt lengths differ
    monkeypatch.setattr(LlamaCppBackend, "server", lambda self, *a, **k: [*original(self, *a, **k),
                                                                          "--chat-template", "chatml"])
    record = run_serve(root, plan, "placeholder-chatml", speed_only=why)
    assert record["status"] == "failed" and "chat template or tokenizer differs" in record["reason"]


def test_transformers_serve_answers_as_the_engine_on_a_qwen2_model_with_another_chat_template(
        served_run, monkeypatch, tmp_path):
    """Seen on the lent H200 (docs/gpu-report-7b/session15): transformers serve 5.23 on a Qwen2 model whose chat
    template is not ChatML returns the whole templated prompt in front of each answer (its response parser
    looks for the Qwen2 fallback's anchor "<|im_start|>assistant\n", transformers/cli/serving/utils.py
    _RESPONSE_TEMPLATE_FALLBACKS, misses it and passes the prefix through), and GuideLLM then times that echo
    as the first token. The stage gives the server a response template anchored on the chat template's own
    generation prompt: the answers are the engine's, token for token. Without it the echo comes back, and
    even on placeholder weights (answers not compared) the check fails it: no random answer holds its prompt."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    from enginebench.backends.base import Backend
    from enginebench.backends.torch_backend import TorchBackend

    root, plan = served_run
    snapshot = root / paths.SNAPSHOT.format(model="tiny")
    qwen = tmp_path / "qwen2"
    qwen.mkdir()
    for f in snapshot.iterdir():  # the tiny model's tokenizer and chat template, a Qwen2 body of random weights
        if f.suffix != ".safetensors" and f.name not in ("config.json", "generation_config.json"):
            shutil.copy(f, qwen / f.name)
    llama = json.loads((snapshot / "config.json").read_text())
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(Qwen2Config(
        vocab_size=llama["vocab_size"], hidden_size=64, intermediate_size=128, num_hidden_layers=1,
        num_attention_heads=4, num_key_value_heads=2, bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )).save_pretrained(qwen, safe_serialization=True)
    samples = tmp_path / "samples.json"  # the Qwen2 engine's own samples (its tokenizer class may differ)
    assert samples_cli.main([
        "--spec", spec_json(plan.runtime_spec("tiny", "fp32", "samples")), "--snapshot", str(qwen),
        "--checkpoint", str(root / paths.CHECKPOINT.format(model="tiny", checkpoint=plan.engines[("tiny", "fp32")]
                                                           .checkpoint)),
        "--engine", str(root / paths.ENGINE.format(model="tiny", variant="fp32")), "--threads", "2",
        "--out", str(samples)]) == 0
    record = run_serve(root, plan, "qwen2", samples=samples, variant="fp32", snapshot=qwen)
    assert record["status"] == "ok", record.get("reason")
    check = record["check"]
    assert check["compared"] and check["equal"] == len(check["answers"]) == 2 and record["steps"]
    assert record["server"]["response_template"]["start_anchor"] == "[assistant]"  # the tiny template's, decoded
    view = next(Path(arg) for arg in record["server"]["command"] if "enginebench-serve-" in arg)
    assert view.name == "qwen2" and not view.parent.exists()  # the links' folder went with the stage

    monkeypatch.setattr(TorchBackend, "served_model", Backend.served_model)  # the snapshot as it is
    record = run_serve(root, plan, "qwen2-echo", speed_only="placeholder weights (seed 0)", samples=samples,
                       variant="fp32", snapshot=qwen)
    assert record["status"] == "failed" and "sends the prompt back inside its answer" in record["reason"]
    assert "steps" not in record and not alive(record["server"]["pid"])


def test_an_echo_is_the_prompt_sent_back_and_not_a_short_prompt_met_by_chance():
    echo = "<｜begin▁of▁sentence｜><｜User｜>The three primary colors are<｜Assistant｜>**** Hend"
    assert serve.holds_prompt(echo, "The three primary colors are", "The three primary colors are")
    assert serve.holds_prompt("<s>[user]Thefunctionreturns[assistant]▁result", "The function returns",
                              "[user] The function returns\n[assistant] ")  # its spaces decoded otherwise
    assert not serve.holds_prompt("A random Hi there", "Hi", "Hi")  # too short to tell from chance
    assert serve.holds_prompt("x [user] Hi\n[assistant] y", "Hi", "[user] Hi\n[assistant] ")  # its template is not
    assert not serve.holds_prompt("anything at all", " \n", " \n")  # nothing to find: no echo
    prompt = "The three primary colors are"
    assert not serve.holds_prompt("**** Hend возможности", prompt, prompt)


def test_a_server_with_another_chat_template_fails_with_the_first_divergence(served_run, monkeypatch):
    root, plan = served_run
    original = LlamaCppBackend.server

    def misconfigured(self, *args, **kwargs):  # a server told another model's chat template
        return [*original(self, *args, **kwargs), "--chat-template", "chatml"]

    monkeypatch.setattr(LlamaCppBackend, "server", misconfigured)
    record = run_serve(root, plan, "chatml")
    assert record["status"] == "failed"
    assert "served output differs from the engine's own samples" in record["reason"]
    assert "first divergence" in record["reason"] and "chat template or tokenizer differs" in record["reason"]
    assert "steps" not in record  # no load figure for a server that is not the engine
    assert not alive(record["server"]["pid"])


def test_a_server_that_does_not_come_up_is_one_reason(served_run, monkeypatch):
    root, plan = served_run
    original = LlamaCppBackend.server
    monkeypatch.setattr(LlamaCppBackend, "server", lambda self, path, *a, **k: [str(path.parent / "no-server")])
    record = run_serve(root, plan, "no-binary")
    assert record["status"] == "failed" and "could not start the server" in record["reason"]

    monkeypatch.setattr(LlamaCppBackend, "server",
                        lambda self, path, *a, **k: original(self, path.with_name("missing.gguf"), *a, **k))
    record = run_serve(root, plan, "no-model")
    assert record["status"] == "failed"
    assert "exited with status" in record["reason"] and "before it answered GET" in record["reason"]
    assert not alive(record["server"]["pid"])


def server_pid(port: str) -> int:
    """The PID of the process listening as `--port <port>` (from /proc)."""
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if b"--port" in args and args[args.index(b"--port") + 1] == port.encode():
            return int(proc.name)
    raise AssertionError(f"no server on port {port}")


def test_a_server_that_dies_mid_sweep_is_a_failure_without_figures(served_run, monkeypatch):
    root, plan = served_run
    original = serve.guidellm_command

    def kill_server_first(scenario_file):  # the server dies as the sweep starts
        url = json.loads(Path(scenario_file).read_text())["spec"]["backend"]["target"]
        os.kill(server_pid(url.rsplit(":", 1)[1]), signal.SIGKILL)
        return original(scenario_file)

    monkeypatch.setattr(serve, "guidellm_command", kill_server_first)
    record = run_serve(root, plan, "killed")
    assert record["status"] == "failed"
    assert "killed by signal 9" in record["reason"] and "during the load sweep" in record["reason"]
    assert "steps" not in record


def test_an_unbuilt_server_is_unavailable_with_the_command_that_builds_it(served_run, monkeypatch, tmp_path):
    root, plan = served_run
    from enginebench import llamacpp_build

    monkeypatch.setattr(llamacpp_build, "SERVER_DIR", tmp_path / "none")
    record = run_serve(root, plan, "unbuilt")
    assert record["status"] == "unavailable" and "`make llama-server`" in record["reason"]


def test_serving_is_planned_after_the_samples_and_before_the_report(tmp_path):
    done = snakemake(tmp_path, "-n", "-p", config=write_config(tmp_path, serve_config()))
    assert done.returncode == 0, done.stderr
    jobs = planned_jobs(done.stdout)
    assert ("serve", "results/tiny/serve/llama-f16.json") in jobs and ("serve", "results/tiny/serve/fp32.json") in jobs
    # the dry run shows each serve job's server and load generator commands
    servers = [line for line in done.stdout.splitlines() if "# server: " in line]
    assert len(servers) == 2
    torch = next(line for line in servers if "transformers" in line)
    assert "serve '<snapshot>' --host 127.0.0.1 --port '<free port>'" in torch and "--continuous-batching" in torch
    assert "<cuda if the host has a GPU, else cpu>" in torch and "--dtype float32" in torch
    llama = next(line for line in servers if "llama-server" in line)
    assert "vendor/llama-server/llama-server --model" in llama and "--parallel 2" in llama and "--jinja" in llama
    loads = [line for line in done.stdout.splitlines() if line.startswith("# load generator: ")]
    assert len(loads) == 2 and all("python -m guidellm run --scenario" in line and "at 1, 2 in flight" in line
                                   for line in loads)
    off = serve_config()
    off["serve"]["enabled"] = False
    done = snakemake(tmp_path, "-n", config=write_config(tmp_path, off))
    assert "serve" not in [r for r, _ in planned_jobs(done.stdout)]


def test_the_serve_spec_changes_with_what_the_check_and_the_load_depend_on():
    config = serve_config()
    validate_config(config)
    base = build_plan(copy.deepcopy(config)).serve_spec("tiny", "llama-f16")
    for change in (lambda c: c["serve"].update(slots=3), lambda c: c["samples"].update(max_new_tokens=9),
                   lambda c: c.update(prompts=["Other"])):
        other = copy.deepcopy(config)
        change(other)
        assert build_plan(other).serve_spec("tiny", "llama-f16") != base
    assert json.loads(spec_json(base))["serve"]["slo"] == SERVE["slo"]
    named = copy.deepcopy(config)  # which engines to serve is not how one is served: nothing reruns
    named["serve"]["engines"] = ["llama-f16"]
    validate_config(named)
    assert build_plan(named).serve_spec("tiny", "llama-f16") == base
    assert {"profile", "rates"}.isdisjoint(base["serve"])  # the concurrent profile's spec as before profiles
    poisson = copy.deepcopy(config)
    poisson["serve"].update(profile="poisson", rates=[1, 2])
    validate_config(poisson)
    spec = build_plan(poisson).serve_spec("tiny", "llama-f16")["serve"]
    assert (spec["profile"], spec["rates"]) == ("poisson", [1, 2]) and "concurrency" not in spec
    for change, key in (({"profile": "poisson"}, "serve.rates: the poisson profile"),
                        ({"rates": [1, 2]}, "serve.rates: set, but serve.profile is concurrent"),
                        ({"profile": "closed"}, "serve.profile")):
        wrong = copy.deepcopy(config)
        wrong["serve"].update(change)
        with pytest.raises(EngineBenchError, match=key):
            validate_config(wrong)
            build_plan(wrong)


def test_serve_engines_names_the_served_variants_and_a_typo_is_one_sentence():
    config = serve_config()
    config["serve"]["engines"] = ["llama-f16"]
    validate_config(config)
    assert build_plan(config).served_engines() == [("tiny", "llama-f16")]
    config = serve_config()
    config["serve"]["engines"] = ["llama-f61"]
    validate_config(config)
    with pytest.raises(EngineBenchError, match=r"serve.engines: llama-f61 is no variant of any model"):
        build_plan(config)


def test_a_torch_engine_without_transformers_serving_extra_is_unavailable_with_the_install_command(monkeypatch):
    from enginebench.backends import torch_backend

    monkeypatch.setattr(torch_backend, "SERVER_MODULES", ("fastapi", "no_such_module_here"))
    with pytest.raises(torch_backend.StageUnavailable, match=r"no_such_module_here missing here\): pip install -r "
                                                               r"envs/requirements.txt"):
        torch_backend.TorchBackend().server(Path("snapshot"), {"dtype": "float32"}, port=1, slots=1, threads=1,
                                             snapshot=Path("snapshot"))
