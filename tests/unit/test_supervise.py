"""The local stack restarts what exits, waits longer each time, and gives up on a crash loop."""

import pytest

from tagllm.stack.supervise import CrashLoop, RestartPolicy, Supervisor


class Process:
    def __init__(self):
        self.running, self.starts, self.process = True, 0, None

    def start(self):
        self.running, self.starts = True, self.starts + 1

    def stop(self, grace=10.0):
        self.running = False

    def log_tail(self, lines=40):
        return "Traceback: boom"


def test_an_exited_process_comes_back_after_a_growing_pause_and_a_crash_loop_stops():
    now = [0.0]
    metrics, gateway = Process(), Process()
    lines = []
    supervisor = Supervisor({"metrics": metrics, "gateway": gateway}, RestartPolicy(max_restarts=3),
                            lines.append, clock=lambda: now[0])  # fmt: skip
    pauses = []
    for _ in range(3):
        metrics.running = False
        start = now[0]
        while not metrics.running:
            supervisor.poll()
            now[0] += 0.25
        pauses.append(now[0] - 0.25 - start)
    assert pauses == [1.0, 2.0, 4.0] and metrics.starts == 3 and gateway.starts == 0
    assert lines[0] == "metrics exited (code None); restarting in 1 s"
    metrics.running = False
    with pytest.raises(CrashLoop, match=r"(?s)metrics exited 4 times within 300 s; giving up.*boom"):
        supervisor.poll()


def test_restarts_older_than_the_window_are_forgiven():
    now = [0.0]
    process = Process()
    supervisor = Supervisor(
        {"refiner": process}, RestartPolicy(max_restarts=1, window_seconds=10), clock=lambda: now[0]
    )
    process.running = False
    supervisor.poll()
    now[0] = 1.0
    supervisor.poll()
    assert process.starts == 1
    now[0] = 20.0  # the first restart has left the window
    process.running = False
    supervisor.poll()
    now[0] = 21.0
    supervisor.poll()
    assert process.starts == 2
