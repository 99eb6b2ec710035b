"""TensorRT-LLM calibration data as a pipeline input, prepared offline on the host.

quantize.py reads `--calib_dataset` through `datasets.load_dataset`: a hub name (cnn_dailymail by
default, downloaded: the network, inside the container) or a local folder whose `train` split has a
`text` column (tensorrt_llm/quantization/quantize_by_modelopt.py@585c7565, get_calib_dataloader). Unless
`calibration.dataset` names one, the pipeline writes that folder: `train.jsonl`, one {"text": ...} per
sample, the samples the ModelOpt prediction calibrates on (`calibration.text`, cut into
`max_seq_length`-token pieces in a seeded order by the snapshot's tokenizer, then decoded), so the real
checkpoint and its prediction see the same text; quantize.py then runs with the hub offline.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import results
from .io import atomic_dir
from .modelopt_quant import calibration_batches
from .paths import MANIFEST
from .progress import progress
from .quality import eval_text
from .scheduler import job_record

SAMPLES_FILE = "train.jsonl"  # the file name gives datasets its split: "train"
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def prepare_calibration(spec: dict, snapshot: Path, out: Path) -> dict:
    """Write the calibration folder for `spec` (Plan.calibration_spec) atomically; return its manifest."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(Path(snapshot), trust_remote_code=spec["trust_remote_code"])
    text, source = eval_text(spec["text"], key="calibration.text")
    samples = calibration_batches(tokenizer, text, spec["size"], spec["max_seq_length"], spec["seed"])
    texts = [tokenizer.decode(ids, skip_special_tokens=True) for ids in samples]
    progress(f"calibration: {len(texts)} samples of up to {spec['max_seq_length']} tokens from {source}")
    with atomic_dir(out) as tmp:
        (tmp / SAMPLES_FILE).write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts),
                                        encoding="utf-8")
        manifest = {"stage": "calibration", "status": "ok", "spec": spec, "text": source, "samples": len(texts),
                    "tokens": sum(map(len, samples)), "file": SAMPLES_FILE, "job": job_record()}
        results.write(tmp / MANIFEST, manifest)
    return manifest
