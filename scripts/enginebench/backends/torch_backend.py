"""PyTorch (transformers) backend: the reference engine, eager or compiled, at a chosen dtype.

It has no checkpoint or engine build of its own: it loads the snapshot's safetensors and casts at
load time, so those stages only write a manifest saying so.

Eager decoding launches every kernel of every step from Python and, on a GPU, is bound by that
launch overhead rather than by memory. With `compile: true` the engine decodes with its own loop
(`StaticDecoder`) over transformers' `StaticCache` (`max_cache_len` positions per sequence): an eager
prefill, then one `torch.compile`d decode step per token (mode "reduce-overhead": CUDA graphs on a
GPU; inductor's default mode on a CPU). Compilation and graph capture happen on the first generation
of each batch size: the bench runs it in its warm-up and records that time apart (`Engine.compiles`).

Why its own loop: through `generate(cache_implementation="static")`, transformers 5.17 on the H200
decoded a 7B model at 21-31 % of the bandwidth bound, torch printing "skipping cudagraphs due to
mutated inputs". Here each batch size keeps one cache for the engine's lifetime (its tensors marked
static addresses by transformers), the padding mask is one fixed [batch, max_cache_len] buffer and
positions a [batch, 1] tensor: every step replays one graph. The host queues the next step before it
waits for the last one's tokens (copied to pinned memory), so the GPU does not idle while Python
streams a token: on the H200 the 7B shape's decode went from 58.6 % of the bound (a sync per token) to
64.7 % in the same probe, and the pipeline's bench measured 68 % (3 graphs captured for 3 batch sizes,
none skipped). Whether graphs were captured, and every skip with torch's reason, is in `info()`.
"""

from __future__ import annotations

import importlib.metadata
import json
import sys
from pathlib import Path

from ..errors import EngineBenchError, StageUnavailable
from .base import Backend, Engine, parallel_gpus


class _TokenStreamer:
    """A transformers streamer that reports each new token's row: generate() hands it the prompt
    first, then one token per row at every step, on the host (so a GPU step has finished)."""

    def __init__(self, on_token):
        self.on_token = on_token
        self.prompt_seen = False

    def put(self, value):
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        for row in range(value.shape[0]):
            self.on_token(row)

    def end(self):
        pass


class _SkipLog:
    """Collects torch's "skipping cudagraphs due to ..." warnings (they name the reason) while installed."""

    def __init__(self):
        import logging

        self.reasons: list[str] = []
        handler = logging.Handler()
        handler.emit = lambda record: self._keep(record.getMessage())
        logging.getLogger("torch").addHandler(handler)

    def _keep(self, message: str) -> None:
        if "cudagraph" in message and message not in self.reasons:
            self.reasons.append(message)


class StaticDecoder:
    """Greedy decoding over one StaticCache per batch size: eager prefill, compiled decode steps."""

    def __init__(self, model, device, max_cache_len: int, mode: str):
        import torch

        self.model, self.device, self.max_cache_len, self.mode = model, device, max_cache_len, mode
        self.caches: dict[int, object] = {}
        # one graph per batch size (and per cache): more than dynamo's default of 8 recompilations
        torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
        self.step = torch.compile(self._step, mode=mode, fullgraph=True, dynamic=False)
        self.skips = _SkipLog() if device.type == "cuda" else None
        self.skips_before = self._skip_count()
        self.graphs_before = _captured_graphs(device) if device.type == "cuda" else 0

    def _step(self, cache, tokens, positions, attention, suppress):
        logits = self.model(input_ids=tokens, position_ids=positions, attention_mask=attention,
                            past_key_values=cache, use_cache=True).logits
        return _greedy(logits, suppress)

    def _cache(self, size: int):
        from transformers import StaticCache
        from transformers.cache_utils import StaticLayer

        if size not in self.caches:  # kept for the engine's lifetime: its graphs replay on the same tensors
            cache = StaticCache(config=self.model.config, max_cache_len=self.max_cache_len)
            # Every layer full length: a sliding-window layer keeps a Python int of its position, which
            # the compiled step would be specialised on (a new graph every token, then dynamo's limit:
            # seen with Gemma 3). The attention mask still keeps those layers to their window.
            cache.layers = [StaticLayer(self.max_cache_len) for _ in cache.layers]
            self.caches[size] = cache
        cache = self.caches[size]
        cache.reset()
        return cache

    def generate(self, rows: list[list[int]], max_new_tokens: int, stop_ids: list[int], fixed_length: bool,
                 on_token=None) -> list[list[int]]:
        import torch

        width = max(len(ids) for ids in rows)
        if width + max_new_tokens > self.max_cache_len:  # checked here: on a GPU, writing past a static
            # cache is a device-side error that poisons the process's CUDA context
            raise EngineBenchError(f"{width} prompt tokens + {max_new_tokens} new ones do not fit the static cache's "
                                   f"max_cache_len {self.max_cache_len}: raise the variant's max_cache_len")
        device, size = self.device, len(rows)
        pads = torch.tensor([width - len(ids) for ids in rows], device=device)
        pad = stop_ids[0] if stop_ids else 0
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in rows], device=device)
        slots = torch.arange(self.max_cache_len, device=device)
        attention = (slots[None, :] >= pads[:, None]).long()  # left padding masked, for every step
        suppress = torch.zeros(self.model.config.get_text_config().vocab_size, dtype=torch.bool, device=device)
        if fixed_length and stop_ids:
            suppress[stop_ids] = True
        with torch.inference_mode():  # the cache's tensors are inference tensors: reset them inside it too
            cache = self._cache(size)
            positions = (torch.arange(width, device=device)[None, :] - pads[:, None]).clamp(min=0)
            token = _greedy(self.model(input_ids=input_ids, position_ids=positions, attention_mask=attention,
                                       past_key_values=cache, use_cache=True, logits_to_keep=1).logits, suppress)
            # On a GPU the host reads each step's tokens while the device already runs the next step: the
            # copy to the host is queued before that step and the host waits for the copy only. (On a CPU
            # reading a token is the step itself, and a token must be counted before the next one runs.)
            ahead = device.type == "cuda"
            host = torch.empty((max_new_tokens, size), dtype=token.dtype, pin_memory=ahead)

            def advance(step, token):
                if step == max_new_tokens - 1:
                    return token
                torch.compiler.cudagraph_mark_step_begin()  # the previous step's output was cloned
                position = (width + step - pads)[:, None]
                return self.step(cache, token[:, None], position, attention, suppress).clone()

            out, done = [[] for _ in rows], [False] * size
            for step in range(max_new_tokens):
                host[step].copy_(token, non_blocking=ahead)
                if ahead:
                    copied = torch.cuda.Event()
                    copied.record(torch.cuda.current_stream(device))
                    token = advance(step, token)  # may run one step past the last one needed
                    copied.synchronize()
                for row, tok in enumerate(host[step].tolist()):
                    if done[row]:
                        continue
                    if not fixed_length and tok in stop_ids:
                        done[row] = True
                        continue
                    out[row].append(tok)
                    if on_token is not None:
                        on_token(row)
                if all(done):
                    break
                if not ahead:
                    token = advance(step, token)
        return out

    @staticmethod
    def _skip_count() -> int:
        from torch._dynamo.utils import counters

        return counters["inductor"]["cudagraph_skips"]

    def record(self) -> dict:
        """What was compiled and whether CUDA graphs were captured (on a GPU), for the bench record."""
        record = {"mode": self.mode, "cache_implementation": "static", "max_cache_len": self.max_cache_len,
                  "decode_loop": "enginebench StaticDecoder: eager prefill, compiled decode step",
                  "batch_sizes_compiled": sorted(self.caches)}
        if self.device.type == "cuda":
            record["cuda_graphs"] = {"captured": _captured_graphs(self.device) - self.graphs_before,
                                     "skipped": self._skip_count() - self.skips_before,
                                     "skip_reasons": list(self.skips.reasons)}
        return record


def _greedy(logits, suppress):
    """Each row's most likely next token after its last position, never a suppressed one."""
    return logits[:, -1, :].masked_fill(suppress, float("-inf")).argmax(-1)


def _captured_graphs(device) -> int:
    """CUDA graphs recorded by torch.compile's CUDA-graph trees on `device` (every node of every tree)."""
    from torch._inductor import cudagraph_trees

    manager = cudagraph_trees.get_manager(device.index or 0, create_if_none_exists=False)
    if manager is None or manager.roots is None:
        return 0
    nodes, stack = 0, [node for roots in manager.roots.values() for node in roots]
    while stack:
        node = stack.pop()
        nodes += 1
        stack.extend(child for children in node.children.values() for child in children)
    return nodes


def _tensor_parallel(model, device) -> dict | None:
    """Ranks, collective backend, the parameters rank 0 holds and the most weight bytes one rank holds, where
    the model is sharded (else None). Every rank calls it (a collective)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return None
    from ..tensor_parallel import parameter_counts

    counts = parameter_counts(model)
    largest = torch.tensor([counts.pop("weight_bytes_on_rank")], device=device)  # NCCL: on the GPU
    dist.all_reduce(largest, op=dist.ReduceOp.MAX)
    return {"ranks": dist.get_world_size(), "collectives": dist.get_backend(), **counts,
            "largest_rank_weight_bytes": int(largest)}


class TorchEngine(Engine):
    def __init__(self, model, device, decoder: StaticDecoder | None = None):
        self.model = model
        self.device = device
        self.parallel = _tensor_parallel(model, device)
        self.decoder = decoder  # the compiled path; None for eager
        self.compiles = decoder is not None

    def generate(self, batch, max_new_tokens, stop_ids, fixed_length, on_token=None):
        import torch

        if self.decoder is not None:
            return self.decoder.generate(batch, max_new_tokens, stop_ids, fixed_length, on_token)
        width = max(len(ids) for ids in batch)
        pad = stop_ids[0] if stop_ids else 0
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in batch], device=self.device)
        attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch],
                                 device=self.device)
        kwargs = dict(max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad,
                      eos_token_id=stop_ids or None, top_p=None, top_k=None, temperature=None)
        if fixed_length:
            kwargs["min_new_tokens"] = max_new_tokens
        if on_token is not None:
            kwargs["streamer"] = _TokenStreamer(on_token)
        with torch.inference_mode():
            out = self.model.generate(input_ids=input_ids, attention_mask=attention, **kwargs)
        rows = []
        for row in out[:, width:].tolist():
            if not fixed_length:
                cut = next((i for i, tok in enumerate(row) if tok in stop_ids), len(row))
                row = row[:cut]
            rows.append(row)
        return rows

    def logits(self, ids):
        import torch

        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([ids], device=self.device)).logits[0]
        return out.float().cpu().numpy()

    def kv_cache_bytes(self, ids):
        """The cache tensors' bytes after a forward pass over `ids` (a sliding-window layer keeps only
        its window, so this can be less than every layer × every token)."""
        import torch

        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([ids], device=self.device), use_cache=True, logits_to_keep=1)
        tensors = [t for layer in out.past_key_values.layers for t in (layer.keys, layer.values) if t is not None]
        held = sum(t.numel() * t.element_size() for t in tensors)
        how = f"{type(out.past_key_values).__name__} tensors after a forward pass"
        if not self.parallel:
            return {"bytes": held, "how": how}
        # a rank's cache holds its own heads only: every rank's sum, and the largest one GPU holds
        import torch.distributed as dist

        total, largest = (torch.tensor([held], device=self.device) for _ in range(2))  # NCCL: on the GPU
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        dist.all_reduce(largest, op=dist.ReduceOp.MAX)
        return {"bytes": int(total), "largest_rank_bytes": int(largest),
                "how": f"{how}, summed over the {self.parallel['ranks']} ranks"}

    def info(self):
        import torch

        params = sum(p.numel() for p in self.model.parameters())
        weight_bytes = sum(p.numel() * p.element_size() for p in self.model.parameters())
        info = {"device": str(self.device), "dtype": str(self.model.dtype).removeprefix("torch."),
                "parameters": params, "weight_bytes": weight_bytes}
        if self.device.type == "cuda":
            info["device_name"] = torch.cuda.get_device_name(self.device)
        if self.decoder is not None:
            info["compiled"] = self.decoder.record()
        if parallel := self.parallel:
            info["tensor_parallel"] = parallel
        return info

    def peak_device_memory_bytes(self):
        import torch

        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device)
        return None


class TorchBackend(Backend):
    exposes_logits = True
    tensor_parallel = True
    name = "torch"

    def describe(self, settings):
        kv = f"{settings['dtype']}, static" if settings["compile"] else settings["dtype"]
        return {"quantization": settings["dtype"], "kv_cache": kv}

    def load(self, snapshot, checkpoint, engine, settings, *, threads, trust_remote_code):
        import torch
        from transformers import AutoModelForCausalLM

        torch.set_num_threads(threads)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        sharded = parallel_gpus(settings) > 1  # one rank of torchrun's (tensor_parallel)
        model = AutoModelForCausalLM.from_pretrained(
            Path(snapshot), dtype=getattr(torch, settings["dtype"]), use_safetensors=True,
            trust_remote_code=trust_remote_code, **({"tp_plan": "auto"} if sharded else {}),
        )
        if sharded:  # transformers placed this rank's shard (its GPU by LOCAL_RANK, or the CPU over gloo)
            device = model.device
        else:
            model.to(device)
        model.eval()
        decoder = None
        if settings["compile"]:
            mode = "reduce-overhead" if device.type == "cuda" else "default"  # CUDA graphs on a GPU
            decoder = StaticDecoder(model, device, settings["max_cache_len"], mode)
        if device.type == "cuda":  # peak memory since load: not another job's in this process
            torch.cuda.reset_peak_memory_stats(device)
        return TorchEngine(model, device, decoder)

    def settings_error(self, settings):
        if settings["compile"] and parallel_gpus(settings) > 1:
            return "compile: true with parallel: the compiled decoder over a sharded model is not built yet"
        return None

    def gpus(self, settings, stage):
        # a split engine has no server (transformers serve runs one process): its serve job records why
        return 0 if stage == "serve" and parallel_gpus(settings) > 1 else super().gpus(settings, stage)

    def parallel_problem(self, parallel, gpus_here):
        """On a host without GPU the ranks are CPU processes over gloo (as an engine of one process runs on
        the CPU there)."""
        return None if gpus_here == 0 else super().parallel_problem(parallel, gpus_here)

    def served_file(self, snapshot, checkpoint, engine):
        return Path(snapshot)  # the engine is the snapshot cast at load time

    def server_description(self, slots):
        return ("PyTorch: `transformers serve` on the snapshot at the engine's dtype, with its continuous batching "
                "(no slot count; its own decode loop, not the bench's)")

    def server(self, engine_file, settings, *, port, slots, threads, snapshot):
        """transformers' own server (`transformers serve`, the PyTorch server of the library the engine
        runs on) on the snapshot at the variant's dtype, with its continuous batching (paged attention).
        It has no slot count: its scheduler takes requests while its paged KV cache has blocks, so `slots`
        is not passed. It runs its own decode loop, not the bench's (`compile` and StaticDecoder do not
        apply): the served figures are transformers serve's."""
        import torch

        if parallel_gpus(settings) > 1:
            raise StageUnavailable("transformers serve runs a model in one process: no tensor-parallel server")
        check_server_modules()
        return self.server_command(engine_file, settings, port=port, slots=slots, threads=threads,
                                   device="cuda" if torch.cuda.is_available() else "cpu")

    def served_model(self, served, scratch, encoder, trust_remote_code):
        """The snapshot, or where transformers serve would not find this chat template's answer (only where the
        stage sends chat completions, the only API that parses one), a folder of links to it whose
        tokenizer_config.json adds a response template of the chat template's own (response_template())."""
        template = response_template(served, encoder, trust_remote_code) if encoder.uses_chat_template else None
        if template is None:
            return served, {}
        view = scratch / served.name
        view.mkdir()
        for f in served.iterdir():
            if f.name != "tokenizer_config.json":
                (view / f.name).symlink_to(f.resolve())
        config = served / "tokenizer_config.json"
        config = json.loads(config.read_text()) if config.is_file() else {}
        (view / "tokenizer_config.json").write_text(json.dumps({**config, "response_template": template}, indent=2))
        return view, {"response_template": template}

    served_placeholder = "<snapshot>"  # the engine is the snapshot cast at load time

    def server_placeholders(self, settings):
        return {"device": "<cuda if the host has a GPU, else cpu>"}

    def server_command(self, engine_file, settings, *, port, slots, threads, device):
        return ["env", f"OMP_NUM_THREADS={threads}", "HF_HUB_OFFLINE=1", *TRANSFORMERS_CLI, "serve",
                str(engine_file), "--host", "127.0.0.1", "--port", str(port), "--device", device,
                "--dtype", settings["dtype"], "--continuous-batching", "--log-level", "info"]

    def fixed_length_fields(self, tokens):
        """transformers serve refuses fields it does not know (422: `ignore_eos`), but takes a whole
        generation config as a JSON string: one whose minimum length is its maximum."""
        return {"generation_config": json.dumps({"max_new_tokens": tokens, "min_new_tokens": tokens,
                                                 "do_sample": False})}

    def versions(self):
        return {name: importlib.metadata.version(name) for name in ("torch", "transformers")}


def check_server_modules() -> None:
    """StageUnavailable, with the install command, where transformers serve cannot start here."""
    missing = []
    for name in SERVER_MODULES:  # imported, not only found: a dependency of theirs may be missing too
        try:
            importlib.import_module(name)
        except ImportError as error:
            missing.append(error.name or name)
    if missing:
        raise StageUnavailable(f"transformers serve needs transformers[serving] ({', '.join(missing)} missing "
                               "here): pip install -r envs/requirements.txt")


def response_template(snapshot: Path, encoder, trust_remote_code: bool) -> dict | None:
    """The response template transformers serve needs to find the answer in what it generated, where its own
    would miss it; None where its own finds it or where it has none (it then sends the decoded tokens as
    they are). `encoder`: the stage's PromptEncoder of the snapshot, whose chat template it sends.

    Its own is the tokenizer's `response_template`, else a fallback for the model_type
    (transformers/cli/serving/utils.py `get_response_template`, `_RESPONSE_TEMPLATE_FALLBACKS`): ChatML's
    anchor `<|im_start|>assistant\n` for every Qwen2 model. Where the chat template's prompt lacks that
    anchor (a Qwen2 model with DeepSeek-R1-Distill-Qwen's template, as the 7B placeholder has), its parser
    sends the whole templated prompt back in front of the answer (seen on the H200, session 15). Ours
    anchors on the chat template's own generation prompt (what add_generation_prompt appends, as the parser
    sees it: decoded from the prompt's ids) and reads the answer as text up to any end-of-sequence token
    the engine stops on: the engine's tokens, as its samples hold them."""
    from types import SimpleNamespace

    from transformers import AutoConfig

    try:
        from transformers.cli.serving.utils import get_response_template
        from transformers.utils.chat_parsing.response_templates import load_response_template
    except ImportError:  # a transformers without response templates: its server sends the decoded tokens
        return None
    tokenizer = encoder.tokenizer
    config = AutoConfig.from_pretrained(snapshot, trust_remote_code=trust_remote_code)
    own = get_response_template(tokenizer, SimpleNamespace(config=config))

    def decoded(generation_prompt: bool) -> str:  # the prompt as the server's parser sees it: its ids decoded
        ids = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], add_generation_prompt=generation_prompt,
                                            return_dict=True)["input_ids"]
        return tokenizer.decode(ids)

    prompt = decoded(True)
    if own is None or load_response_template(own).start_anchor_re.search(prompt):
        return None
    bare = decoded(False)
    anchor = prompt[len(bare):] if prompt.startswith(bare) else ""
    if not anchor:  # no generation prompt to anchor on: the served-output check judges what comes back
        return None
    ends = tokenizer.convert_ids_to_tokens(encoder.stop_ids)
    content = {"content": "text", **({"close": ends} if ends else {})}
    return {"defaults": {"role": "assistant"}, "start_anchor": anchor, "fields": {"content": content}}


# what `transformers serve` imports to start: transformers[serving] (fastapi, uvicorn, openai's types and their
# HTTP client, httpx2, which the lent H200 lacked)
SERVER_MODULES = ("uvicorn", "transformers.cli.serving.chat_completion")
# the `transformers` command's module, run by this interpreter: the transformers this process imports (an
# air-gapped host's bundle puts ours first on PYTHONPATH, the server inheriting it), not whichever version's
# console script lies beside the interpreter (the lent H200's venv has transformers 5.17's)
TRANSFORMERS_CLI = (sys.executable, "-m", "transformers.cli.transformers")
