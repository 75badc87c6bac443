"""Session-wide: the machine's measured slowdown, which stretches the deadlines on CPU-bound work.

Many tests wait for work that only the CPU bounds: a worker process importing TensorFlow, a bot subprocess
starting, a job painting a few hundred iterations. Their deadlines were set on the development machine;
on a CI runner 2–3× slower, or one shared with other jobs, the same work simply takes longer. The session
therefore times a small fixed workload once, at its start, before any worker competes with it
(`tests.timing`), and those deadlines are written as `scaled(seconds)`. Holds of the fake Telegram
server (a request that hangs for N seconds) and client request timeouts are wall-clock network timings,
not CPU work, so they stay fixed. The factor is printed at the end of the run; set
NEURAL_STYLE_TEST_SLOWDOWN to force one.
"""

from __future__ import annotations

import os

import pytest

from tests import timing


def pytest_sessionstart(session: pytest.Session) -> None:
    # The Ray clusters this process starts (tests/bot/test_ray_bot.py, tests/engine/workers/test_pools.py,
    # test_ray_pool.py) run without token authentication, for the same reason the cluster test's driver
    # runs in a process of its own: Ray keeps authentication state per process, and in a full run, with
    # Ray's default (token authentication for a new local cluster), their GCS came up demanding a token the
    # test process did not send ("InvalidAuthToken: Authentication token is missing"), though each module
    # passed alone. Those clusters listen on loopback for minutes; token authentication itself is tested
    # on a real two-node cluster in a process of its own (tests/engine/workers/test_ray_cluster.py).
    os.environ["RAY_AUTH_MODE"] = "disabled"
    timing.slowdown()  # measured now, while nothing else of the session uses the CPU


def pytest_report_header(config: pytest.Config) -> str:
    return _describe()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    terminalreporter.write_line(_describe())


def _describe() -> str:
    return (
        f"deadlines on CPU-bound work scaled ×{timing.slowdown():.2f} "
        f"(reference workload {timing.REFERENCE_SECONDS:.3f} s on the development machine; "
        f"{timing.ENV_OVERRIDE} overrides)"
    )
