"""Ctrl-C and SIGTERM deferred to the next batch boundary, so that a checkpoint is written for a whole batch."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

__all__ = ["DeferredInterrupt"]

logger = logging.getLogger(__name__)


class DeferredInterrupt:
    """Turn the first Ctrl-C (SIGINT), or the first SIGTERM (the stop request a job scheduler such as SLURM sends
    before it kills a job), into a request that the loop honours at the next batch boundary.

    A second signal raises ``KeyboardInterrupt`` at once. Active only when ``enabled`` and in the main thread, and
    for each signal only while it has its default handler (Python's for SIGINT, the system's for SIGTERM): a
    handler the caller installed, or a signal the process ignores, is left alone.

    :param enabled: Whether to defer (e.g. only when a checkpoint will be written).
    """

    DEFAULTS = ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL))

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> DeferredInterrupt:
        if self.enabled and threading.current_thread() is threading.main_thread():
            for signum, default in self.DEFAULTS:
                if signal.getsignal(signum) == default:
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        logger.warning(
            "%s: stopping after this batch to write a checkpoint (send it again to stop now).",
            "Interrupt" if signum == signal.SIGINT else "Termination request (SIGTERM)",
        )

    def __exit__(self, *exc: Any) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}
