"""The record a running `dev` leaves for other commands: visible only while its lock is held."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.dev import state


def test_a_second_claim_is_refused_and_the_record_lives_only_with_the_lock(tmp_path: Path) -> None:
    run = state.DevRun(123, "postgresql://x/db", "redis://y:6379/0", "http://127.0.0.1:8000", True)
    held = state.claim(tmp_path)
    state.record(tmp_path, run)
    assert state.running(tmp_path) == run
    assert (tmp_path / state.RUN_FILE).stat().st_mode & 0o077 == 0
    with pytest.raises(state.AlreadyRunning, match=r"pid 123, receiver http://127.0.0.1:8000"):
        state.claim(tmp_path)
    state.release(tmp_path, held)
    assert state.running(tmp_path) is None
    state.release(tmp_path, state.claim(tmp_path))  # free again


def test_a_record_left_by_a_killed_dev_is_ignored(tmp_path: Path) -> None:
    held = state.claim(tmp_path)
    state.record(tmp_path, state.DevRun(1, "postgresql://x/db", "redis://y", "http://h:1", False))
    held.close()  # the process died: the kernel dropped its lock, the file stayed
    assert (tmp_path / state.RUN_FILE).exists()
    assert state.running(tmp_path) is None
