"""What SIGINT, SIGTERM and SIGHUP do to a training run: Caffe's ``-sigint_effect``/``-sighup_effect``.

A signal only records a request; the loop polls it between iterations (Caffe's
``SignalHandler::GetRequestedAction`` in src/caffe/util/signal_handler.cpp). In a data-parallel
run the root process's request is broadcast, so every process stops or snapshots together.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from types import FrameType

import torch

from mcnn.errors import ConfigError

#: The effects a signal may have (Caffe's SolverAction: STOP, SNAPSHOT, NONE).
ACTIONS = ("stop", "snapshot", "none")


class SignalRequests:
    """The action requested by the last signal, shared across the processes of a run.

    ``sigint_effect`` applies to SIGINT and SIGTERM, ``sighup_effect`` to SIGHUP; each is one of
    :data:`ACTIONS`. Only the root process (rank 0) installs handlers.
    """

    def __init__(self, sigint_effect: str, sighup_effect: str, rank: int = 0, world: int = 1):
        for action in (sigint_effect, sighup_effect):
            if action not in ACTIONS:
                raise ConfigError(f"signal effect must be one of {', '.join(ACTIONS)}, got {action!r}")
        self.effects = {signal.SIGINT: sigint_effect, signal.SIGTERM: sigint_effect, signal.SIGHUP: sighup_effect}
        self.rank, self.world = rank, world
        self.requested: str | None = None
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        """Install the handlers (root process, main thread only); :meth:`restore` puts the old ones back."""
        if self.rank != 0 and self.world > 1:
            return

        def handler(effect: str) -> Callable[[int, FrameType | None], None]:
            def on_signal(signum: int, frame: FrameType | None) -> None:
                if effect != "none":
                    self.requested = effect
            return on_signal

        try:
            for sig, effect in self.effects.items():
                self._previous[sig] = signal.signal(sig, handler(effect))
        except ValueError:  # not the main thread
            pass

    def restore(self) -> None:
        """Reinstall the handlers that :meth:`install` replaced."""
        for sig, old in self._previous.items():
            signal.signal(sig, old)  # type: ignore[arg-type]
        self._previous = {}

    def poll(self) -> str | None:
        """The pending action ("stop", "snapshot") or None; a snapshot request is consumed by the poll."""
        action = self.requested
        if self.world > 1:
            import torch.distributed as dist

            code = torch.tensor([ACTIONS.index(action) + 1 if action else 0], dtype=torch.int64)
            dist.broadcast(code, src=0)
            action = ACTIONS[int(code) - 1] if int(code) else None
            self.requested = action
        if action == "snapshot":
            self.requested = None
            return "snapshot"
        return action
