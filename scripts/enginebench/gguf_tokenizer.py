"""Carry a reference tokenizer in GGUF form, and put it into converted GGUFs.

A snapshot made from a GGUF (the packaged default model) has tokenizer.json but no SentencePiece
tokenizer.model; llama.cpp's converter then guesses a BPE vocabulary with the wrong pre-tokenizer.
So the snapshot keeps the original file's tokenizer metadata as a tensor-less `tokenizer.gguf`, and
the llama.cpp checkpoint stage writes those fields over the converter's guess. The bench stage
checks the result: token ids must equal the snapshot tokenizer's.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

TOKENIZER_GGUF = "tokenizer.gguf"


def _fields(reader, keep):
    import gguf

    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF.") or not keep(field.name):
            continue
        main = field.types[0]
        sub = field.types[-1] if main == gguf.GGUFValueType.ARRAY else None
        yield field.name, field.contents(), main, sub


def _architecture(reader) -> str:
    return reader.get_field("general.architecture").contents()


def write_tokenizer_gguf(source: Path, out: Path) -> None:
    """Copy the tokenizer.* metadata of `source` into a GGUF file with no tensors."""
    import gguf

    reader = gguf.GGUFReader(str(source))
    writer = gguf.GGUFWriter(str(out), _architecture(reader))
    for name, value, main, sub in _fields(reader, lambda n: n.startswith("tokenizer.")):
        writer.add_key_value(name, value, main, sub_type=sub)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()


def replace_tokenizer(model: Path, tokenizer: Path, out: Path) -> None:
    """Write `model` to `out` with its tokenizer.* metadata replaced by `tokenizer`'s."""
    import gguf

    reader = gguf.GGUFReader(str(model))
    tok_reader = gguf.GGUFReader(str(tokenizer))
    if _architecture(tok_reader) != _architecture(reader):
        raise ValueError(f"{tokenizer} is for {_architecture(tok_reader)}, the model is {_architecture(reader)}")
    writer = gguf.GGUFWriter(str(out), _architecture(reader))
    for name, value, main, sub in _fields(reader, lambda n: not n.startswith("tokenizer.")):
        writer.add_key_value(name, value, main, sub_type=sub)
    for name, value, main, sub in _fields(tok_reader, lambda n: n.startswith("tokenizer.")):
        writer.add_key_value(name, value, main, sub_type=sub)
    for tensor in reader.tensors:
        writer.add_tensor_info(tensor.name, tensor.data.shape, tensor.data.dtype, tensor.data.nbytes,
                               tensor.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for tensor in reader.tensors:
        writer.write_tensor_data(tensor.data, tensor_endianess=reader.endianess)
    writer.close()


@contextlib.contextmanager
def gguf_parsed_once():
    """Within it, a GGUF file is parsed once. transformers parses it anew for the tokenizer, the config
    and the weights, and the tokenizer GGUF once more; each parse walks Gemma 3's 262,144-token
    vocabulary element by element (~10 s on our 2-core machine, 40 of the snapshot's 62 s)."""
    import gguf

    original, readers = gguf.GGUFReader, {}

    def parsed_once(path, mode="r"):
        key = (str(Path(path).resolve()), mode)
        if key not in readers:
            readers[key] = original(path, mode)
        return readers[key]

    gguf.GGUFReader = parsed_once  # transformers looks it up at each call (`from gguf import GGUFReader`)
    try:
        yield
    finally:
        gguf.GGUFReader = original
