"""GroupCommit: one flush for the threads that wait together, each thread its own result, an
error reaches every thread of its batch and never wedges the writer."""

from __future__ import annotations

import threading

import pytest

from plugin.group_commit import GroupCommit


def test_a_lone_submission_is_flushed_at_once_with_its_own_result():
    calls: list[list[int]] = []

    def flush(items: list[int]) -> list[int]:
        calls.append(items)
        return [i * 10 for i in items]

    writer = GroupCommit(flush)
    assert writer.submit(4) == 40
    assert writer.submit(5) == 50
    assert calls == [[4], [5]]


def _blocked_first_flush(results_of):
    """A flush that holds its first batch until released, recording every batch."""
    release, entered = threading.Event(), threading.Event()
    batches: list[list[int]] = []

    def flush(items: list[int]) -> list:
        batches.append(list(items))
        if len(batches) == 1:
            entered.set()
            assert release.wait(5)
        return results_of(items)

    return flush, release, entered, batches


def _submit_all(writer, items, outcomes):
    def run(item):
        try:
            outcomes[item] = writer.submit(item)
        except Exception as exc:  # noqa: BLE001 — recorded for the assertion
            outcomes[item] = exc

    threads = [threading.Thread(target=run, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    return threads


def _wait_for_queue(writer, size):
    for _ in range(500):
        if len(writer._pending) == size:
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"{len(writer._pending)} waiting, expected {size}")


def test_threads_arriving_during_a_write_share_the_next_one_and_each_gets_its_result():
    flush, release, entered, batches = _blocked_first_flush(lambda items: [f"row-{i}" for i in items])
    writer = GroupCommit(flush)
    outcomes: dict = {}
    first = _submit_all(writer, [0], outcomes)
    assert entered.wait(5)
    rest = _submit_all(writer, range(1, 8), outcomes)
    _wait_for_queue(writer, 7)
    release.set()
    for thread in first + rest:
        thread.join(5)
    assert batches[0] == [0] and sorted(batches[1]) == list(range(1, 8)) and len(batches) == 2
    assert outcomes == {i: f"row-{i}" for i in range(8)}


def test_a_failed_write_fails_every_thread_of_its_batch_and_the_next_batch_still_runs():
    failing = {"on": True}

    def results_of(items):
        if failing["on"]:
            raise ConnectionError("database went away")
        return items

    flush, release, entered, batches = _blocked_first_flush(results_of)
    writer = GroupCommit(flush)
    outcomes: dict = {}
    first = _submit_all(writer, [0], outcomes)
    assert entered.wait(5)
    rest = _submit_all(writer, [1, 2], outcomes)
    _wait_for_queue(writer, 2)
    release.set()
    first[0].join(5)
    for thread in rest:
        thread.join(5)
    assert isinstance(outcomes[0], ConnectionError)
    assert isinstance(outcomes[1], ConnectionError) and isinstance(outcomes[2], ConnectionError)
    failing["on"] = False
    assert writer.submit(9) == 9  # not wedged: a new thread writes at once
    assert [sorted(batch) for batch in batches] == [[0], [1, 2], [9]]  # the waiting batch was written too


def test_a_flush_that_returns_the_wrong_number_of_results_is_an_error_for_all():
    writer = GroupCommit(lambda items: [])
    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        writer.submit(1)
