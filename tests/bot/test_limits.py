"""The per-user upload limit: a sliding window, and a table that does not grow for ever."""

from __future__ import annotations

from bot import limits
from bot.limits import UploadLimiter


def test_the_window_slides_and_refusals_do_not_count() -> None:
    limiter = UploadLimiter(2, window=60.0)
    assert [limiter.allow(1, now=t) for t in (0.0, 1.0, 2.0, 59.0)] == [True, True, False, False]
    assert limiter.allow(2, now=2.0)  # someone else has a window of their own
    assert limiter.allow(1, now=60.5)  # the upload at 0 s has left the window
    assert not limiter.allow(1, now=60.6)


def test_idle_users_are_forgotten_once_many_are_tracked(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(limits, "MAX_TRACKED_USERS", 3)
    limiter = UploadLimiter(1, window=10.0)
    for user in (1, 2, 3):
        assert limiter.allow(user, now=0.0)
    assert limiter.allow(4, now=20.0)  # 1–3 idle for a whole window: dropped to make room
    assert sorted(limiter._times) == [4]
    assert not limiter.allow(4, now=21.0)
