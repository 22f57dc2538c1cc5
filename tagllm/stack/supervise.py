"""Keeps the local stack's processes running: a child that exits is started again after a
growing pause; one that keeps exiting is a crash loop, reported with its log, and stops the stack."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping

from tagllm.stack.processes import ManagedProcess


class CrashLoop(RuntimeError):
    """A process exited too often in too short a time to be worth restarting."""


@dataclasses.dataclass(frozen=True)
class RestartPolicy:
    # More exits than this within the window is a crash loop.
    max_restarts: int = 5
    window_seconds: float = 300.0
    # The pause before the n-th restart within the window: first * 2**(n-1), at most `longest`.
    first_pause_seconds: float = 1.0
    longest_pause_seconds: float = 30.0

    def pause(self, restarts: int) -> float:
        return min(self.first_pause_seconds * 2**restarts, self.longest_pause_seconds)


class Supervisor:
    def __init__(
        self,
        processes: Mapping[str, ManagedProcess],
        policy: RestartPolicy = RestartPolicy(),
        log: Callable[[str], None] = lambda line: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.processes = processes
        self.policy = policy
        self.log = log
        self.clock = clock
        self._restarts: dict[str, list[float]] = {name: [] for name in processes}
        self._due: dict[str, float] = {}

    def poll(self) -> None:
        """Restarts every exited process whose pause is over; CrashLoop past the policy's limit."""
        now = self.clock()
        for name, process in self.processes.items():
            if process.running:
                continue
            recent = [t for t in self._restarts[name] if now - t < self.policy.window_seconds]
            if len(recent) >= self.policy.max_restarts:
                raise CrashLoop(
                    f"{name} exited {len(recent) + 1} times within {self.policy.window_seconds:.0f} s; "
                    f"giving up. Its log ends:\n{process.log_tail(15)}"
                )
            if name not in self._due:
                code = process.process.returncode if process.process else None
                pause = self.policy.pause(len(recent))
                self.log(f"{name} exited (code {code}); restarting in {pause:.0f} s")
                self._due[name] = now + pause
            if now >= self._due[name]:
                process.stop(grace=0)  # whatever it left behind in its process group goes first
                process.start()
                self._restarts[name] = [*recent, now]
                del self._due[name]
                self.log(
                    f"{name} restarted ({len(recent) + 1} in the last {self.policy.window_seconds:.0f} s)"
                )
