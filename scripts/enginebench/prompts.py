"""Tokenize prompts once with the snapshot's own tokenizer, for every engine alike."""

from __future__ import annotations

import json
from pathlib import Path


class PromptEncoder:
    def __init__(self, snapshot: Path, *, chat_template: bool, trust_remote_code: bool = False):
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(Path(snapshot), trust_remote_code=trust_remote_code)
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
