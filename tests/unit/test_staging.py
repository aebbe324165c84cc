"""engine/repository/staging.py and `s2f export`: a folder is written whole or not at all; nothing we did
not write is deleted."""

from __future__ import annotations

import pytest

from speech2face.engine.cli.main import main
from speech2face.engine.repository.staging import MARKER, ForeignFolderError, is_ours, staged_folder


def _write(staging, text="new"):
    (staging / "model").mkdir()
    (staging / "model" / "config.pbtxt").write_text(text)


def test_new_folder_is_written_with_marker(tmp_path):
    with staged_folder(tmp_path / "repo") as staging:
        _write(staging)
    assert (tmp_path / "repo" / "model" / "config.pbtxt").read_text() == "new"
    assert is_ours(tmp_path / "repo") and (tmp_path / "repo" / MARKER).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]   # no staging or old folder left


def test_our_folder_is_replaced_and_a_failed_write_changes_nothing(tmp_path):
    target = tmp_path / "repo"
    with staged_folder(target) as staging:
        _write(staging, "first")
    with staged_folder(target) as staging:
        _write(staging, "second")
    assert (target / "model" / "config.pbtxt").read_text() == "second"
    with pytest.raises(RuntimeError, match="boom"):
        with staged_folder(target) as staging:
            _write(staging, "third")
            raise RuntimeError("boom")
    assert (target / "model" / "config.pbtxt").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]


def test_foreign_folder_is_refused_before_work_and_kept_with_force(tmp_path):
    target = tmp_path / "photos"
    target.mkdir()
    (target / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(ForeignFolderError, match="--force"):
        with staged_folder(target) as staging:
            pytest.fail(f"the block ran in {staging}")
    assert (target / "holiday.jpg").read_bytes() == b"precious"
    with staged_folder(target, force=True) as staging:
        _write(staging)
    assert is_ours(target)
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("photos.replaced-")]
    assert len(aside) == 1 and (aside[0] / "holiday.jpg").read_bytes() == b"precious"


def test_a_file_and_an_empty_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ForeignFolderError, match="is a file"):
        with staged_folder(tmp_path / "notes.txt"):
            pass
    (tmp_path / "empty").mkdir()
    with staged_folder(tmp_path / "empty") as staging:
        _write(staging)
    assert is_ours(tmp_path / "empty")


def test_s2f_export_refuses_a_users_folder(tmp_path, capsys):
    target = tmp_path / "out"
    target.mkdir()
    (target / "thesis.tex").write_text("years of work")
    assert main(["export", "--out", str(target)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (target / "thesis.tex").read_text() == "years of work"
    assert main(["export", "--out", str(target), "--force"]) == 0
    assert (target / "speech2face" / "config.pbtxt").is_file()
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("out.replaced-")]
    assert len(kept) == 1 and (kept[0] / "thesis.tex").read_text() == "years of work"
    assert main(["export", "--out", str(target)]) == 0   # our own repository: rewritten without --force


def test_s2f_export_gpu_keeps_a_users_folder(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    assert main(["export", "--target", "gpu", "--out", str(target), "--no-build-plans"]) == 2
    assert (target / "notes.txt").read_text() == "mine"
    assert main(["export", "--target", "gpu", "--out", str(target), "--no-build-plans", "--force"]) == 0
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("out.replaced-")]
    assert len(kept) == 1 and (kept[0] / "notes.txt").read_text() == "mine"
    assert (target / "speech2face" / "config.pbtxt").is_file()
