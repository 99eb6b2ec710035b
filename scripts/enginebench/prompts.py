"""Tokenize prompts once with the snapshot's own tokenizer, for every engine alike.

The snapshot's tokenizer is transformers' (AutoTokenizer). Loading it costs a job ~3 s, and a
llama.cpp job ~3 s more for importing transformers (and torch with it) for nothing else: ~6 s of a
10 s samples job on 2 cores. Where the snapshot stage found that transformers' tokenizer is the
snapshot's tokenizer.json as it stands (the same `tokenizers` pipeline, no decode clean-up: its
manifest's `tokenizer` facts), a job that applies no chat template loads that file through
`tokenizers` alone (`TokenizerFile`, ~1 s) and calls it as transformers' tokenizer calls it: the same
ids and text by construction.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from .paths import MANIFEST

TOKENIZER_JSON = "tokenizer.json"


def tokenizer_facts(snapshot: Path, trust_remote_code: bool) -> dict:
    """What the jobs need to know of the snapshot's tokenizer without loading transformers' (the snapshot
    manifest's `tokenizer`): whether tokenizer.json alone is it, its special ids, whether it has a chat
    template; or why the jobs load transformers' tokenizer."""
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(snapshot, trust_remote_code=trust_remote_code)
    except Exception as error:  # the jobs then fail on it, each with transformers' own error
        return {"file_is_tokenizer": False, "why": f"transformers cannot load it: {type(error).__name__}: {error}"}
    backend = getattr(tokenizer, "backend_tokenizer", None)
    why = ("not a `tokenizers` tokenizer" if backend is None else
           f"no {TOKENIZER_JSON}" if not (snapshot / TOKENIZER_JSON).is_file() else
           f"transformers' pipeline is not {TOKENIZER_JSON}'s"
           if backend.to_str() != Tokenizer.from_file(str(snapshot / TOKENIZER_JSON)).to_str() else
           "its decode cleans up spaces" if tokenizer.clean_up_tokenization_spaces else None)
    facts = {"file_is_tokenizer": why is None, "bos_token_id": tokenizer.bos_token_id,
             "eos_token_id": tokenizer.eos_token_id, "chat_template": bool(tokenizer.chat_template)}
    return facts if why is None else {**facts, "why": why}


class TokenizerFile:
    """The snapshot's tokenizer.json through `tokenizers` alone, called as transformers' tokenizer calls
    its backend (tokenization_utils_tokenizers.py: `_encode_plus` without truncation or padding and with
    special tokens not split, `_decode` without clean-up); only where `tokenizer_facts` found it equal."""

    chat_template = None

    def __init__(self, snapshot: Path, facts: dict):
        from tokenizers import Tokenizer

        self.backend = Tokenizer.from_file(str(snapshot / TOKENIZER_JSON))
        self.backend.no_truncation()
        self.backend.no_padding()
        self.backend.encode_special_tokens = False
        self.bos_token_id, self.eos_token_id = facts["bos_token_id"], facts["eos_token_id"]

    def __call__(self, text: str, add_special_tokens: bool = True) -> SimpleNamespace:
        return SimpleNamespace(input_ids=self.backend.encode(text, add_special_tokens=add_special_tokens).ids)

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return self.backend.decode(ids, skip_special_tokens=skip_special_tokens)


def load_tokenizer(snapshot: Path, *, chat_template: bool, trust_remote_code: bool):
    """The snapshot's tokenizer: its tokenizer.json alone where the snapshot stage found that to be
    transformers' tokenizer and no chat template is applied, else transformers' AutoTokenizer."""
    from . import results

    manifest = snapshot / MANIFEST  # a model folder that is no snapshot (a test's) has none
    facts = results.read(manifest, "snapshot").get("tokenizer", {}) if manifest.is_file() else {}
    if facts.get("file_is_tokenizer") and not (chat_template and facts["chat_template"]):
        return TokenizerFile(snapshot, facts)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(snapshot, trust_remote_code=trust_remote_code)


class PromptEncoder:
    def __init__(self, snapshot: Path, *, chat_template: bool, trust_remote_code: bool = False):
        self.tokenizer = load_tokenizer(Path(snapshot), chat_template=chat_template,
                                        trust_remote_code=trust_remote_code)
        self.uses_chat_template = bool(chat_template and self.tokenizer.chat_template)
        self.stop_ids = _stop_ids(Path(snapshot), self.tokenizer)

    def encode(self, prompt: str) -> list[int]:
        if self.uses_chat_template:
            ids = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True
            )
            # transformers 5 returns a BatchEncoding here, 4.x a plain list
            return list(ids["input_ids"] if hasattr(ids, "keys") else ids)
        return list(self.tokenizer(prompt).input_ids)

    def parity_case(self, prompt: str) -> tuple[str, bool, list[int]]:
        """(text, add_special, ids): the exact text behind encode(prompt), for the tokenizer parity
        check. A chat-templated text already holds its special tokens, so none are added to it."""
        if self.uses_chat_template:
            text = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
            )
            return text, False, list(self.tokenizer(text, add_special_tokens=False).input_ids)
        return prompt, True, self.encode(prompt)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)


def _stop_ids(snapshot: Path, tokenizer) -> list[int]:
    """End-of-sequence ids: generation_config.json's list (e.g. <end_of_turn>) plus the tokenizer's."""
    ids: list[int] = []
    gen_config = snapshot / "generation_config.json"
    if gen_config.exists():
        eos = json.loads(gen_config.read_text()).get("eos_token_id")
        ids += eos if isinstance(eos, list) else [eos] if eos is not None else []
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return list(dict.fromkeys(ids))
