"""Checkpoint on request: SIGTERM and SIGUSR2 (Slurm's preemption and time-limit signals) are held until the
training loop reaches a step boundary, writes ``last.pt``, and hands the signal on to whoever handled it before.

Under submitit the earlier handler requeues the task (SIGUSR2) or ignores the signal (SIGTERM); in a plain
process the default action ends it. Either way the checkpoint is written first, so a requeued or killed job
resumes from the step it reached, not from the last timed checkpoint.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGUSR2)


class StopRequests:
    """The signals received while installed; ``hand_on()`` restores the earlier handlers and re-raises them."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self._previous: dict[int, object] = {}

    def _hold(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)

    def install(self) -> None:
        """Hold the signals (only possible in the main thread; elsewhere nothing is held)."""
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._hold) for s in SIGNALS}

    def restore(self) -> None:
        """Put the earlier handlers back."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    @property
    def pending(self) -> bool:
        """Whether a signal arrived that the loop has not handed on yet."""
        return bool(self.received)

    def hand_on(self) -> None:
        """Deliver the held signals to the earlier handlers (after the checkpoint), then hold them again.

        ``raise_signal`` runs a Python handler before it returns: submitit's requeues and exits, the default
        action ends the process; a handler that returns (submitit ignores SIGTERM) lets the run go on.
        """
        received, self.received = self.received, []
        self.restore()
        for signum in dict.fromkeys(received):
            signal.raise_signal(signum)
        self.install()


@contextlib.contextmanager
def held_signals() -> Iterator[StopRequests]:
    """Hold SIGTERM/SIGUSR2 for the duration of a training run; see the module docstring."""
    stop = StopRequests()
    stop.install()
    try:
        yield stop
    finally:
        stop.restore()
