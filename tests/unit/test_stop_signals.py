"""A stop signal during a step that must not be cut in two waits for the step's end."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from dbproc.control.signals import Interrupted, held, interruptible


def test_a_signal_in_a_held_step_is_raised_when_the_step_ends() -> None:
    steps: list[str] = []
    with interruptible(), pytest.raises(Interrupted) as caught:
        with held():
            os.kill(os.getpid(), signal.SIGTERM)
            steps.append("after the signal")
            with held():  # nested: raised when the outermost held block ends
                steps.append("nested")
            steps.append("end of the step")
        steps.append("never")
    assert steps == ["after the signal", "nested", "end of the step"]
    assert caught.value.signum == signal.SIGTERM


def test_a_second_signal_in_a_held_step_is_raised_at_once() -> None:
    steps: list[str] = []
    with interruptible(), pytest.raises(Interrupted) as caught:
        with held():
            os.kill(os.getpid(), signal.SIGTERM)
            steps.append("held back")
            os.kill(os.getpid(), signal.SIGINT)
            steps.append("never")
    assert steps == ["held back"]
    assert caught.value.signum == signal.SIGINT
    with interruptible():  # nothing is left over for the next pass
        with held():
            steps.append("a later step")
    assert steps[-1] == "a later step"


def test_held_outside_the_main_thread_holds_nothing_back() -> None:
    seen: list[bool] = []

    def step() -> None:
        with held():
            seen.append(True)

    thread = threading.Thread(target=step)
    thread.start()
    thread.join()
    assert seen == [True]
