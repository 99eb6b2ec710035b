"""How the jobs load the snapshot's tokenizer: its tokenizer.json through `tokenizers` alone only where the
snapshot stage found that file to be transformers' own tokenizer (enginebench/prompts.py)."""

import json
import shutil

from transformers import AutoTokenizer

from enginebench.bench import parity_text
from enginebench.paths import MANIFEST
from enginebench.prompts import PromptEncoder, TokenizerFile, tokenizer_facts

MINIMAL_MANIFEST = {"stage": "snapshot", "source": {"kind": "local"}, "files": [], "total_bytes": 0}
PROMPTS = ["The three primary colors are", "Once upon a time, in a small village by the sea,", "<s> x </s>"]


def snapshot_of(model, out, edit=None):
    """A snapshot folder of the tiny model's tokenizer with the manifest's facts, its tokenizer.json edited."""
    shutil.copytree(model, out)
    if edit is not None:
        path = out / "tokenizer.json"
        pipeline = json.loads(path.read_text())
        edit(pipeline)
        path.write_text(json.dumps(pipeline))
        (out / "tokenizer.model").unlink()  # transformers rebuilds from tokenizer.json, not from this
    facts = tokenizer_facts(out, trust_remote_code=False)
    (out / MANIFEST).write_text(json.dumps({**MINIMAL_MANIFEST, "tokenizer": facts}))
    return out, facts


def test_the_file_alone_gives_transformers_ids_and_text(tiny_model, tmp_path):
    snapshot, facts = snapshot_of(tiny_model, tmp_path / "snapshot")
    assert facts == {"file_is_tokenizer": True, "bos_token_id": 1, "eos_token_id": 2, "chat_template": True}
    own = AutoTokenizer.from_pretrained(snapshot)
    encoder = PromptEncoder(snapshot, chat_template=False)
    assert isinstance(encoder.tokenizer, TokenizerFile) and not encoder.uses_chat_template
    for text in [*PROMPTS, parity_text(20000)]:
        for special in (True, False):
            assert encoder.tokenizer(text, add_special_tokens=special).input_ids == \
                own(text, add_special_tokens=special).input_ids
    ids = own(parity_text(20000)).input_ids + [facts["eos_token_id"]]
    assert encoder.decode(ids) == own.decode(ids, skip_special_tokens=True)
    assert encoder.tokenizer.decode(ids) == own.decode(ids)
    assert (encoder.tokenizer.bos_token_id, encoder.tokenizer.eos_token_id) == (own.bos_token_id, own.eos_token_id)
    # a chat template is transformers' to render: the job that applies one loads transformers' tokenizer
    templated = PromptEncoder(snapshot, chat_template=True)
    assert not isinstance(templated.tokenizer, TokenizerFile) and templated.uses_chat_template
    assert templated.stop_ids == encoder.stop_ids


def test_a_file_that_transformers_does_not_take_as_it_stands_is_never_loaded_alone(tiny_model, tmp_path):
    """transformers' LlamaTokenizer builds its own pre-tokenizer whatever tokenizer.json says: that file alone
    would give other ids, so the facts say why and every job loads transformers' tokenizer."""
    snapshot, facts = snapshot_of(tiny_model, tmp_path / "snapshot",
                                  lambda pipeline: pipeline.update(pre_tokenizer={"type": "Whitespace"}))
    assert facts["file_is_tokenizer"] is False and facts["why"] == "transformers' pipeline is not tokenizer.json's"
    encoder = PromptEncoder(snapshot, chat_template=False)
    assert not isinstance(encoder.tokenizer, TokenizerFile)
    alone = TokenizerFile(snapshot, facts)
    assert alone(PROMPTS[1]).input_ids != encoder.tokenizer(PROMPTS[1]).input_ids  # what the check prevents


def test_a_snapshot_without_the_facts_loads_transformers_tokenizer(tiny_model, tmp_path):
    """A snapshot made before the facts were recorded (or whose tokenizer transformers cannot load) keeps
    transformers' tokenizer."""
    snapshot = tmp_path / "snapshot"
    shutil.copytree(tiny_model, snapshot)
    (snapshot / MANIFEST).write_text(json.dumps(MINIMAL_MANIFEST))
    assert not isinstance(PromptEncoder(snapshot, chat_template=False).tokenizer, TokenizerFile)
    (snapshot / "tokenizer_config.json").write_text("{not json")
    facts = tokenizer_facts(snapshot, trust_remote_code=False)
    assert facts["file_is_tokenizer"] is False and facts["why"].startswith("transformers cannot load it: ")
