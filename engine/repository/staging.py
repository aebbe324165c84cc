"""Writes a folder whole or not at all, and never deletes a folder that we did not write.

    from speech2face.engine.repository.staging import staged_folder

    with staged_folder(out_dir, force=False) as staging:   # refuses a foreign non-empty out_dir here
        write_everything_into(staging)                     # an empty folder beside out_dir
    # on success: staging holds MARKER and has been swapped into out_dir; on error: nothing changed

API:

- `staged_folder(target, force=False, kind="repository")`: a context manager yielding a new
  empty staging folder beside `target` (same file system, so the swap is a rename). When the
  block succeeds, an ownership marker (`MARKER`) is written into it and it replaces `target`:
  - `target` missing or an empty folder: renamed into place;
  - `target` ours (it holds `MARKER`, or `LEGACY_MARKERS` of writers older than the marker):
    the old folder is renamed aside, the new one renamed into place, then the old one deleted;
  - `target` foreign (anything else, or a file): `ForeignFolderError` before any work, unless
    `force`, in which case the foreign folder is renamed aside to `<target>.replaced-<time>` and
    kept (its path is logged), never deleted.
  When the block raises, the staging folder (ours) is deleted and `target` is untouched.
- `check_target(target, force=False, kind="repository")`: the same refusal, on its own (call it
  before expensive work that does not go through `staged_folder`).
- `is_ours(folder)`: whether `folder` was written by a writer of this project.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

MARKER = ".s2f-written"
# Files that only our repository writers put there, for folders written before MARKER existed.
LEGACY_MARKERS = ("speech2face/build_record.json",)


class ForeignFolderError(FileExistsError):
    """The target holds files that we did not write; the message says how to proceed."""


def is_ours(folder: Path) -> bool:
    folder = Path(folder)
    return (folder / MARKER).is_file() or any((folder / name).is_file() for name in LEGACY_MARKERS)


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


def check_target(target: str | Path, force: bool = False, kind: str = "repository") -> None:
    """Raises ForeignFolderError when `target` exists, is not empty and is not ours (unless force)."""
    target = Path(target)
    if not (target.exists() or target.is_symlink()) or force or _is_empty_dir(target):
        return
    if target.is_dir() and not target.is_symlink() and is_ours(target):
        return
    what = "a file" if not target.is_dir() else "a folder that holds files not written by s2f"
    raise ForeignFolderError(f"{target} is {what}; refusing to replace it with a {kind}. Choose a new or "
                             f"empty folder, or pass --force to move it aside to {target.name}.replaced-<time> "
                             f"and write there")


def _move_aside(target: Path, suffix: str) -> Path:
    aside = target.with_name(f"{target.name}.{suffix}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
    target.rename(aside)
    return aside


def _swap_into_place(staging: Path, target: Path, force: bool, kind: str) -> None:
    check_target(target, force, kind)   # again: the folder may have changed while we wrote
    if not (target.exists() or target.is_symlink()):
        staging.rename(target)
        return
    if _is_empty_dir(target):
        target.rmdir()
        staging.rename(target)
        return
    ours = target.is_dir() and not target.is_symlink() and is_ours(target)
    aside = _move_aside(target, "old" if ours else "replaced")
    staging.rename(target)
    if ours:
        shutil.rmtree(aside)
    else:
        print(f"moved the previous contents of {target} to {aside}", file=sys.stderr)


@contextlib.contextmanager
def staged_folder(target: str | Path, force: bool = False, kind: str = "repository") -> Iterator[Path]:
    """Yields an empty staging folder beside `target`; swaps it into place when the block succeeds."""
    target = Path(os.path.abspath(target))
    check_target(target, force, kind)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.staging-"))
    try:
        yield staging
        written_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        marker = {"writer": "speech2face", "kind": kind, "written_at": written_at}
        (staging / MARKER).write_text(json.dumps(marker) + "\n")
        _swap_into_place(staging, target, force, kind)
    finally:
        if staging.exists():
            shutil.rmtree(staging)   # our own staging folder, never the target
