"""The one atomic write and the one sha256 (engine/contract/fileio.py)."""

from __future__ import annotations

import hashlib
import os
import stat

import pytest

from speech2face.engine.contract.fileio import atomic_path, atomic_write_text, sha256_file


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "sub" / "model.onnx"
    atomic_write_text(target, "first")
    assert target.read_text() == "first" and stat.S_IMODE(os.stat(target).st_mode) == 0o644
    with pytest.raises(RuntimeError, match="check failed"):
        with atomic_path(target) as tmp:
            tmp.write_text("half-written")
            raise RuntimeError("check failed")
    assert target.read_text() == "first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.onnx"]
    with atomic_path(target, mode=0o600) as tmp:
        tmp.write_text("second")
    assert target.read_text() == "second" and stat.S_IMODE(os.stat(target).st_mode) == 0o600


def test_sha256_reads_in_chunks(tmp_path):
    data = os.urandom(3000)
    (tmp_path / "blob").write_bytes(data)
    assert sha256_file(tmp_path / "blob", chunk=1024) == hashlib.sha256(data).hexdigest()
