"""The node's own evaluation: off the caller's thread, the newest state wins over one still
waiting, at most one per interval except the run's last, `flush` waits for the last, and a
failure is raised in the caller's thread."""

import threading

import pytest
import torch

from mpls_celery.runtime.worker.self_eval import SelfEvaluation


def state(value: float) -> dict[str, torch.Tensor]:
    return {"w": torch.tensor([value])}


def test_the_newest_waiting_state_replaces_an_older_one_and_flush_waits_for_it():
    gate, reported = threading.Event(), []

    def evaluate(s: dict[str, torch.Tensor]) -> float:
        gate.wait()
        return float(s["w"])

    evaluation = SelfEvaluation(evaluate, reported.append, min_interval=0)
    evaluation.submit(state(1))
    while evaluation._pending is not None:  # the thread has taken the first state
        threading.Event().wait(0.001)
    evaluation.submit(state(2))
    evaluation.submit(state(3))  # replaces 2, which never started
    assert reported == []  # the caller is not held up
    gate.set()
    evaluation.flush()
    assert reported == [1.0, 3.0]
    evaluation.close()


def test_a_failure_is_raised_once_in_the_callers_thread():
    def evaluate(s: dict[str, torch.Tensor]) -> float:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    evaluation = SelfEvaluation(evaluate, lambda acc: None, min_interval=0)
    evaluation.submit(state(1))
    with pytest.raises(torch.cuda.OutOfMemoryError):
        evaluation.flush()
    evaluation.flush()  # raised once: the node decides what comes next
    evaluation.close()


def test_close_drops_a_state_not_yet_started():
    gate, reported = threading.Event(), []
    evaluation = SelfEvaluation(
        lambda s: (gate.wait(), float(s["w"]))[1], reported.append, min_interval=0
    )
    evaluation.submit(state(1))
    while evaluation._pending is not None:
        threading.Event().wait(0.001)
    evaluation.submit(state(2))
    closing = threading.Thread(target=evaluation.close)
    closing.start()
    while not evaluation._closing:  # 2 is dropped while 1 is still being evaluated
        threading.Event().wait(0.001)
    gate.set()
    closing.join()
    assert reported == [1.0]


def test_a_due_evaluation_within_the_interval_is_skipped_but_never_the_runs_last():
    now, reported = [0.0], []
    evaluation = SelfEvaluation(
        lambda s: float(s["w"]), reported.append, min_interval=1.0, clock=lambda: now[0]
    )
    for value, at in ((1, 0.0), (2, 0.4), (3, 0.99), (4, 1.0), (5, 1.5)):
        now[0] = at
        evaluation.submit(state(value))
        evaluation.flush()
    evaluation.submit(state(6), last=True)  # 0.5 s after 4, and evaluated
    evaluation.flush()
    assert reported == [1.0, 4.0, 6.0]
    evaluation.close()
