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

import pytest

from tests import timing


def pytest_sessionstart(session: pytest.Session) -> None:
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
