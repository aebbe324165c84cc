"""Instances of one model see each other compute through a shared lock file, across processes."""

from __future__ import annotations

import multiprocessing

from speech2face.engine.runtime.peer_activity import PeerActivity


def _hold_computing(path: str, started, release) -> None:
    with PeerActivity(path).computing() as alone:
        started.put(alone)
        release.wait(30)


def test_an_instance_is_alone_only_while_no_other_computes(tmp_path):
    path = str(tmp_path / "instances.lock")
    me = PeerActivity(path)
    with me.computing() as alone:
        assert alone
    context = multiprocessing.get_context("spawn")
    started, release = context.Queue(), context.Event()
    other = context.Process(target=_hold_computing, args=(path, started, release))
    other.start()
    try:
        assert started.get(timeout=60) is True          # the other instance started alone
        with me.computing() as alone:
            assert not alone                            # ... and is computing now
    finally:
        release.set()
        other.join(60)
    with me.computing() as alone:                       # its lock went with it
        assert alone


def test_a_killed_instance_leaves_no_lock_behind(tmp_path):
    path = str(tmp_path / "instances.lock")
    context = multiprocessing.get_context("spawn")
    started, release = context.Queue(), context.Event()
    other = context.Process(target=_hold_computing, args=(path, started, release))
    other.start()
    assert started.get(timeout=60) is True
    other.kill()
    other.join(60)
    with PeerActivity(path).computing() as alone:
        assert alone
