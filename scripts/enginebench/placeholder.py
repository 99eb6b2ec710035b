"""Placeholder ("dummy") weights: a snapshot of a real architecture whose weights come from a seed.

The way serving engines measure speed at a scale whose weights they do not have (vLLM and SGLang
`--load-format dummy`, TensorRT-LLM's `load_format="dummy"`): a model's `config.json` (committed, a
local file, or a hub repository's at a pinned revision) and a real tokenizer of that family, with
every weight drawn from a fixed seed. Such a model answers speed only, never quality: its engines get
the verdict NOT APPLICABLE.

Weights: each matrix (and embedding) from N(0, initializer_range²), each norm weight 1, each bias 0.
A normal generator per tensor, seeded from the seed and the tensor's name, on the CPU: the same seed
gives the same bytes in any order and any number of threads, with the same torch on the same kind of
CPU (torch's vectorised normal_ differs between instruction sets: the provenance records both). With
these scales every RMS-normalized layer input has unit size and each layer adds O(1) to the residual stream, so
activations stay in the low tens through 28 layers: far from float16's 65,504, so a NaN or an inf in
an engine's output is the engine's, not the weights'.
"""

from __future__ import annotations

import json
import math
import shutil
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from .disk import check_free
from .errors import EngineBenchError
from .progress import progress

HEADER_BYTES = 64 * 1024**2  # more than any GGUF's metadata (Qwen2's 152k-token vocabulary: 5.9 MB)
SHARD_BYTES = 2 * 1024**3  # bounded memory while writing: one shard's tensors at a time
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json",
                   "vocab.json", "merges.txt", "chat_template.jinja", "generation_config.json")
NOTE = ("placeholder weights drawn from seed {seed}: the architecture of {config}, not its trained weights; "
        "figures of speed and memory only")


def make_placeholder(source: dict, out: Path, threads: int, trust_remote_code: bool) -> dict:
    """Write config.json, the tokenizer and seeded safetensors weights into `out`; return provenance."""
    import torch

    config_from = _config(source, out)
    tokenizer_from = _tokenizer(source, out, config_from)
    weights = write_weights(out, source["seed"], source["dtype"], threads, trust_remote_code)
    return {"config": config_from, "tokenizer": tokenizer_from, "seed": source["seed"], "dtype": source["dtype"],
            "generator": f"torch {torch.__version__} CPU normal_ ({torch.backends.cpu.get_cpu_capability()}), "
                         "one generator per tensor seeded with crc32('{seed}/{name}')",
            **weights, "note": NOTE.format(seed=source["seed"], config=config_from)}


def _config(source: dict, out: Path) -> str:
    """config.json from the hub repository (and revision) or from a local file or folder."""
    if "repo_id" in source:  # snapshot.import_snapshot has brought the repository's files, not its weights
        if not (out / "config.json").is_file():
            raise EngineBenchError(f"{source['repo_id']}@{source['revision']} has no config.json: "
                                   "not a transformers model")
        return f"{source['repo_id']}@{source['revision']}"
    path = Path(source["config"]).expanduser()
    file = path / "config.json" if path.is_dir() else path
    if not file.is_file():
        raise EngineBenchError(f"placeholder config not found: {file} (models.<name>.source.config)")
    shutil.copyfile(file, out / "config.json")
    return str(file)


def _tokenizer(source: dict, out: Path, config_from: str) -> str:
    """The tokenizer files: from `tokenizer` (a folder, or a GGUF whose metadata holds one), else those
    beside the config (a folder or hub repository that has them)."""
    if "tokenizer" not in source:
        if "repo_id" not in source:
            folder = Path(source["config"]).expanduser()
            folder = folder if folder.is_dir() else folder.parent
            _copy_tokenizer(folder, out)
        if not _has_tokenizer(out):
            raise EngineBenchError(f"placeholder model: no tokenizer beside {config_from}: set "
                                   "models.<name>.source.tokenizer to a tokenizer folder or a GGUF holding one")
        return config_from
    path = Path(source["tokenizer"]).expanduser()
    if path.is_dir():
        _copy_tokenizer(path, out)
        if not _has_tokenizer(out):
            raise EngineBenchError(f"placeholder tokenizer folder {path} has no tokenizer.json or tokenizer.model")
        return str(path)
    if path.suffix == ".gguf" and path.is_file():
        return _tokenizer_from_gguf(path, out)
    raise EngineBenchError(f"placeholder tokenizer not found: {path} (a tokenizer folder or a .gguf file; "
                           "README, 'Placeholder models')")


def _has_tokenizer(folder: Path) -> bool:
    return any((folder / name).exists() for name in ("tokenizer.json", "tokenizer.model"))


def _copy_tokenizer(folder: Path, out: Path) -> None:
    for name in TOKENIZER_FILES:
        if (folder / name).is_file() and not (out / name).exists():
            shutil.copyfile(folder / name, out / name)


def _tokenizer_from_gguf(path: Path, out: Path) -> str:
    """transformers converts the GGUF's tokenizer metadata into tokenizer.json; the GGUF itself (its
    tokenizer metadata only) stays as tokenizer.gguf, which llama.cpp's checkpoint writes into its GGUF."""
    from transformers import AutoTokenizer

    from .gguf_tokenizer import TOKENIZER_GGUF, gguf_parsed_once, write_tokenizer_gguf

    with gguf_parsed_once():  # a 152k-token vocabulary takes gguf-py ~10 s per parse
        write_tokenizer_gguf(path, out / TOKENIZER_GGUF)
        tokenizer = AutoTokenizer.from_pretrained(str(out), gguf_file=TOKENIZER_GGUF)
        tokenizer.save_pretrained(out)
        tokens, special, bos, eos = _gguf_special_tokens(out / TOKENIZER_GGUF)
    _restore_special_tokens(out, special)
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    if len(tokenizer) != tokens or tokenizer.bos_token_id != bos or tokenizer.eos_token_id != eos:
        raise EngineBenchError(f"tokenizer made from {path} does not match its GGUF: {len(tokenizer)} tokens "
                               f"(GGUF: {tokens}), BOS {tokenizer.bos_token_id} ({bos}), "
                               f"EOS {tokenizer.eos_token_id} ({eos})")
    return f"{path} (tokenizer metadata of a GGUF: {tokens} tokens)"


def _gguf_special_tokens(path: Path) -> tuple[int, dict[int, tuple[str, bool]], int | None, int | None]:
    """(token count, {id: (text, is_control)} of the control and user-defined tokens, BOS id, EOS id)."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    tokens = reader.get_field("tokenizer.ggml.tokens").contents()
    types = reader.get_field("tokenizer.ggml.token_type").contents()
    control, user = gguf.TokenType.CONTROL, gguf.TokenType.USER_DEFINED
    special = {i: (tok, kind == control) for i, (tok, kind) in enumerate(zip(tokens, types, strict=True))
               if kind in (control, user)}

    def token_id(key):
        field = reader.get_field(f"tokenizer.ggml.{key}_token_id")
        return None if field is None else int(field.contents())

    return len(tokens), special, token_id("bos"), token_id("eos")


def _restore_special_tokens(out: Path, special: dict[int, tuple[str, bool]]) -> None:
    """transformers 5.23 converts a byte-level BPE GGUF's control tokens as if they were text (byte-level
    encoded: '<｜begin▁of▁sentence｜>' is not in its vocabulary) and appends BOS/EOS as new tokens past the
    vocabulary. Put every control and user-defined token back at its GGUF id, as one token."""
    file = out / "tokenizer.json"
    data = json.loads(file.read_text(encoding="utf-8"))
    vocab = data["model"]["vocab"]
    by_id = {i: text for text, i in vocab.items()}
    for i, (text, _) in special.items():
        vocab.pop(by_id.get(i), None)
        vocab[text] = i
    data["added_tokens"] = [{"id": i, "content": text, "single_word": False, "lstrip": False, "rstrip": False,
                             "normalized": False, "special": control} for i, (text, control) in sorted(special.items())]
    by_text = {text: i for i, (text, _) in special.items()}
    processor = data.get("post_processor") or {}
    for entry in processor.get("special_tokens", {}).values():
        entry["ids"] = [by_text.get(text, i) for text, i in zip(entry["tokens"], entry["ids"], strict=True)]
    file.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def tensor_shapes(out: Path, trust_remote_code: bool) -> list[tuple[str, tuple[int, ...]]]:
    """Every weight the architecture in out/config.json loads, with its shape (built on the meta device:
    no memory), named and shaped as the hub's checkpoints are (transformers 5 fuses some, e.g. Mixtral's
    experts, and converts them back on save: so do we). A tied output embedding is left out."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.core_model_loading import revert_weight_conversion

    config = AutoConfig.from_pretrained(out, trust_remote_code=trust_remote_code)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    tied = getattr(config.get_text_config(), "tie_word_embeddings", False)
    return [(name, tuple(t.shape)) for name, t in revert_weight_conversion(model, model.state_dict()).items()
            if not (tied and name == "lm_head.weight")]


def seeded_tensor(name: str, shape: tuple[int, ...], seed: int, std: float, dtype: str):
    """One tensor of the placeholder model: the same bytes for the same (name, shape, seed), torch and CPU kind."""
    import torch

    if len(shape) == 1:  # biases 0, norm weights 1: the scale of a freshly initialized model
        value = 1.0 if "norm" in name and not name.endswith("bias") else 0.0
        return torch.full(shape, value, dtype=getattr(torch, dtype))
    # the CPU generator (mt19937) keeps 32 bits of its seed: both go through one 32-bit hash
    generator = torch.Generator().manual_seed(zlib.crc32(f"{seed}/{name}".encode()))
    return torch.empty(shape, dtype=torch.float32).normal_(0.0, std, generator=generator).to(getattr(torch, dtype))


def write_weights(out: Path, seed: int, dtype: str, threads: int, trust_remote_code: bool) -> dict:
    """Seeded safetensors shards (with their index when there are several) for out/config.json."""
    import torch
    from safetensors.torch import save_file

    config = json.loads((out / "config.json").read_text())
    std = config.get("initializer_range", 0.02)
    shapes = tensor_shapes(out, trust_remote_code)
    size = torch.tensor([], dtype=getattr(torch, dtype)).element_size()
    shards, current, current_bytes = [], [], 0
    for name, shape in shapes:
        nbytes = size * math.prod(shape)
        if current and current_bytes + nbytes > SHARD_BYTES:
            shards.append(current)
            current, current_bytes = [], 0
        current.append((name, shape))
        current_bytes += nbytes
    shards.append(current)
    names = (["model.safetensors"] if len(shards) == 1 else
             [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))])
    parameters = sum(math.prod(shape) for _, shape in shapes)
    total = size * parameters
    progress(f"placeholder: {len(shapes)} tensors, {parameters:,} parameters, "
             f"{total / 1e9:.2f} GB of {dtype} in {len(shards)} file(s), seed {seed}, {threads} thread(s)")
    check_free(out / "model.safetensors", total, "the placeholder snapshot's weights")
    torch.set_num_threads(1)  # parallel over tensors instead: one generator each
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for i, (file, shard) in enumerate(zip(names, shards, strict=True)):
            tensors = pool.map(lambda item: seeded_tensor(*item, seed, std, dtype), shard)
            save_file(dict(zip((n for n, _ in shard), tensors, strict=True)), out / file, metadata={"format": "pt"})
            progress(f"placeholder: wrote {file} ({i + 1}/{len(shards)})")
    if len(shards) > 1:
        index = {"metadata": {"total_size": total},
                 "weight_map": {name: file for file, shard in zip(names, shards, strict=True) for name, _ in shard}}
        (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return {"parameters": parameters, "weight_bytes": total, "std": std}


def gguf_without_tensors(src: BinaryIO, name: str, out: Path) -> None:
    """Copy the start of the GGUF file `src` (a download's first part suffices: the header comes first,
    and a tokenizer's metadata is far below 64 MiB) to `out` with its tensor count set to 0, so that
    gguf-py reads its metadata without the tensor data it lacks. `name` says which file it is."""
    head = src.read(24)
    if head[:4] != b"GGUF":
        raise EngineBenchError(f"{name} is not a GGUF file (no GGUF magic)")
    version, _tensors, kv_count = struct.unpack("<IQQ", head[4:24])
    if version not in (2, 3):
        raise EngineBenchError(f"{name} is GGUF version {version}: only versions 2 and 3 are read")
    with open(out, "wb") as dst:
        dst.write(head[:4] + struct.pack("<IQQ", version, 0, kv_count))
        dst.write(src.read(HEADER_BYTES))
