import json

import pytest

from enginebench.io import atomic_dir, sha256_file, tree_bytes, write_json_atomic


def test_atomic_dir_success_replaces_target(tmp_path):
    target = tmp_path / "engine"
    target.mkdir()
    (target / "stale.bin").write_text("old")
    with atomic_dir(target) as tmp:
        assert tmp != target and tmp.parent == tmp_path
        (tmp / "new.bin").write_bytes(b"x" * 10)
    assert sorted(p.name for p in target.iterdir()) == ["new.bin"]
    assert tree_bytes(target) == 10
    assert [p.name for p in tmp_path.iterdir()] == ["engine"]


def test_atomic_dir_failure_leaves_no_output(tmp_path):
    target = tmp_path / "engine"
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "half.bin").write_text("partial")
            raise RuntimeError("killed build")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_write_json_atomic_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "bench.json"
    write_json_atomic(path, {"ok": 1})
    circular = {}
    circular["self"] = circular
    with pytest.raises(ValueError):
        write_json_atomic(path, circular)
    assert json.loads(path.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]


def test_sha256_file(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
