"""A tiny Llama made offline for tests: briefly trained weights, a real Llama-2-style tokenizer.

Hidden size 256 so that llama.cpp's k-quants (rows divisible by 256) apply. The tokenizer is a
SentencePiece BPE model with byte fallback trained here on Python's own documentation, shipped as
tokenizer.model (what llama.cpp's converter reads) beside the tokenizer.json transformers makes of it.
The weights get ~15 s of training on the same prose, so that next-token distributions are peaked
(perplexity ~70 instead of the vocabulary size of a random model) and quality metrics can tell a
sound engine from a damaged one.
"""

from __future__ import annotations

import io
import json
import pydoc_data.topics
import shutil
from pathlib import Path

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}[assistant] {% endif %}"
)


def training_text(chars: int = 60_000) -> list[str]:
    text = " ".join(pydoc_data.topics.topics.values())[:chars]
    return [line for line in text.splitlines() if line.strip()]


def make_tokenizer(out: Path, vocab_size: int = 800, dummy_prefix: bool = True):
    """`dummy_prefix`: a space before the text (SentencePiece's add_dummy_prefix). llama.cpp then puts one
    before a chat-templated prompt too, where transformers does not (after the template's BOS): without
    it both tokenize a chat-templated prompt alike, which the serve tests need."""
    import sentencepiece as spm
    from transformers import AutoTokenizer

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(training_text()), model_writer=model, vocab_size=vocab_size, model_type="bpe",
        byte_fallback=True, character_coverage=1.0, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        normalization_rule_name="identity", remove_extra_whitespaces=False, split_digits=True, minloglevel=2,
        add_dummy_prefix=dummy_prefix,
    )
    (out / "tokenizer.model").write_bytes(model.getvalue())
    (out / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
        # add_prefix_space: what llama.cpp's converter reads (add_dummy_prefix it does not)
        "add_bos_token": True, **({} if dummy_prefix else {"add_prefix_space": False}),
    }))
    tokenizer = AutoTokenizer.from_pretrained(out)  # converts tokenizer.model to a fast tokenizer
    tokenizer.chat_template = CHAT_TEMPLATE
    spm_file = out / "tokenizer.model"
    shutil.copy(spm_file, out / ".tokenizer.model")
    tokenizer.save_pretrained(out)
    (out / ".tokenizer.model").replace(spm_file)  # save_pretrained writes only tokenizer.json
    return tokenizer


def prose(chars: int) -> str:
    return " ".join(" ".join(pydoc_data.topics.topics.values()).split())[:chars]


def train(model, tokenizer, steps: int, seed: int, batch: int = 16, length: int = 64) -> None:
    import torch

    ids = torch.tensor(tokenizer(prose(400_000), add_special_tokens=False).input_ids)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    bos = torch.tensor([tokenizer.bos_token_id])
    model.train()
    for _ in range(steps):
        starts = torch.randint(0, len(ids) - length, (batch,), generator=generator)
        rows = torch.stack([torch.cat([bos, ids[s:s + length - 1]]) for s in starts])
        model(input_ids=rows, labels=rows).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()


def damage(model_dir: Path, out: Path) -> Path:
    """A copy of a model with every attention output projection zeroed: really damaged weights that
    blind the model to its context, as a broken KV cache does, so it falls into repeating itself."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(model_dir, out)
    tensors = load_file(out / "model.safetensors")
    for name in tensors:
        if name.endswith("self_attn.o_proj.weight"):
            tensors[name] = tensors[name] * 0
    save_file(tensors, out / "model.safetensors", metadata={"format": "pt"})
    return out


def overflow(model_dir: Path, out: Path, scale: float = 1e5) -> Path:
    """A copy of a model whose output projection is scaled up so that float16 logits overflow to inf,
    as Gemma 3 overflows in float16: an engine that builds and runs but returns no usable output."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(model_dir, out)
    tensors = load_file(out / "model.safetensors")
    tensors["lm_head.weight"] = tensors["lm_head.weight"] * scale
    save_file(tensors, out / "model.safetensors", metadata={"format": "pt"})
    return out


def make_tiny_llama(out: Path, seed: int = 0, layers: int = 2, train_steps: int = 200,
                    dummy_prefix: bool = True) -> Path:
    """Write config.json, model.safetensors and tokenizer files of a tiny Llama into `out`."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = make_tokenizer(out, dummy_prefix=dummy_prefix)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=256, intermediate_size=512, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
        bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    train(model, tokenizer, train_steps, seed)
    model.generation_config = GenerationConfig(bos_token_id=1, eos_token_id=2, pad_token_id=0)
    model.save_pretrained(out, safe_serialization=True)
    return out


def unsupported_copy(model: Path, folder: Path) -> Path:
    """A copy of `model` under an architecture name that llama.cpp's converter does not know."""
    folder.mkdir()
    for f in model.iterdir():
        shutil.copy(f, folder / f.name)
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = ["NoSuchForCausalLM"]
    (folder / "config.json").write_text(json.dumps(config))
    return folder
