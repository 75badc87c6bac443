"""The plain values that cross the storage boundary."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

MAX_ATTEMPTS = 3
"""A job whose worker died this many times is failed instead of queued again."""


class JobStatus(StrEnum):
    """Where a job is: `queued → running → done → delivered`, or `failed` / `cancelled`."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"


OPTIMIZERS = ("lbfgs", "adam")
INITIALS = ("content", "adain")
BRUSHES = ("small", "medium", "large")
"""How big the style's strokes come out on the painting (the bot maps each to a style scale)."""


@dataclass(frozen=True)
class JobRequest:
    """What one picture is to be: the choices the bot made for it when it was queued."""

    iterations: int  # optimisation steps (≥ 1)
    max_size: int  # long side of the result in pixels (≥ 1)
    optimizer: str = "lbfgs"  # "lbfgs" or "adam"
    initial: str = "content"  # what the optimisation starts from: "content" or "adain"
    margin: int = 0  # pixels of mirrored frame optimised and cropped off (≥ 0)
    preserve_colors: bool = False
    style_strength: float = 1.0  # × the engine's default style weight, in (0, 100]
    fast: bool = False  # one feed-forward pass instead of the optimisation
    brush: str = "medium"  # one of BRUSHES: the style's size relative to the painting

    def __post_init__(self) -> None:
        if isinstance(self.iterations, bool) or not isinstance(self.iterations, int) or self.iterations < 1:
            raise ValueError(f"iterations must be a positive int, got {self.iterations!r}")
        if isinstance(self.max_size, bool) or not isinstance(self.max_size, int) or self.max_size < 1:
            raise ValueError(f"max_size must be a positive number of pixels, got {self.max_size!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.initial not in INITIALS:
            raise ValueError(f"initial must be one of {', '.join(INITIALS)}, got {self.initial!r}")
        if isinstance(self.margin, bool) or not isinstance(self.margin, int) or self.margin < 0:
            raise ValueError(f"margin must be a non-negative number of pixels, got {self.margin!r}")
        if not (math.isfinite(self.style_strength) and 0 < self.style_strength <= 100):
            raise ValueError(f"style strength must be in (0, 100], got {self.style_strength}")
        _check_brush(self.brush)


def _check_brush(brush: str) -> None:
    if brush not in BRUSHES:
        raise ValueError(f"brush must be one of {', '.join(BRUSHES)}, got {brush!r}")


@dataclass(frozen=True)
class Job:
    """One style transfer request and its history."""

    id: int
    chat_id: int
    user_id: int
    status: JobStatus
    content_path: Path
    style_paths: tuple[Path, ...]
    request: JobRequest  # frozen at submit time
    progress: int  # iterations done so far
    progress_total: int
    status_message_id: int | None  # the chat message that shows progress
    preview_message_id: int | None  # the photo message showing the instant preview, replaced by the result
    content_size: tuple[int, int] | None  # the photo's upright (width, height), as intake read it
    shrunk_to: int | None  # the long side painted, when free memory made it smaller than asked
    attempts: int  # runs lost to a dead worker, a restart or a result lost before delivery
    error: str | None
    result_path: Path | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    delivered_at: float | None

    @property
    def iterations(self) -> int:
        """The optimisation steps the job was queued with."""
        return self.request.iterations


@dataclass(frozen=True)
class Options:
    """A chat's own choices, kept across jobs."""

    output_size: int | None = None  # longest side in pixels; None: the max_image_size setting
    preserve_colors: bool = False
    style_strength: float = 1.0
    fast: bool = False  # deliver the instant preview as the result, without the optimisation
    brush: str = "medium"  # one of BRUSHES

    def __post_init__(self) -> None:
        if self.output_size is not None and not 1 <= self.output_size <= 100_000:
            raise ValueError(f"output size must be a positive number of pixels, got {self.output_size}")
        if not (math.isfinite(self.style_strength) and 0 < self.style_strength <= 100):
            raise ValueError(f"style strength must be in (0, 100], got {self.style_strength}")
        _check_brush(self.brush)


@dataclass(frozen=True)
class Session:
    """What a chat has sent so far towards its next job."""

    chat_id: int
    user_id: int | None
    content_path: Path | None = None
    content_size: tuple[int, int] | None = None  # (width, height) in pixels
    content_message_id: int | None = None  # the message the content photo came in
    content_frames: int | None = None  # the frames to paint when the content is a clip; None for a photo
    style_path: Path | None = None  # the uploaded style, or the chosen preset's image
    style_preset: str | None = None  # the preset's name when the style is a preset
    options: Options = field(default_factory=Options)
    updated_at: float | None = None

    @property
    def ready(self) -> bool:
        """Whether both a content and a style image are there."""
        return self.content_path is not None and self.style_path is not None


@dataclass(frozen=True)
class Preset:
    """A named style image that admins added."""

    name: str
    image_path: Path
    added_by: int
    created_at: float


@dataclass(frozen=True)
class Settings:
    """Run-time settings the admins may change."""

    iterations: int = 500  # optimisation steps per job
    max_image_size: int = 1024  # longest side of the output in pixels
    retention_days: int = 7  # days finished jobs keep their result files
    input_retention_days: int = 1  # days finished jobs keep their uploads (photo and style)


@dataclass(frozen=True)
class Limits:
    """Inclusive (low, high) bounds for each setting."""

    iterations: tuple[int, int] = (1, 5000)
    max_image_size: tuple[int, int] = (64, 4096)
    retention_days: tuple[int, int] = (1, 365)
    input_retention_days: tuple[int, int] = (0, 365)


@dataclass(frozen=True)
class SettingChange:
    """One change of one setting, and who made it."""

    name: str
    old_value: int | None
    new_value: int
    changed_by: int
    changed_at: float


@dataclass(frozen=True)
class User:
    """Someone who used the bot, with the counts quotas need."""

    user_id: int
    first_seen: float
    last_seen: float
    language: str | None
    active_jobs: int  # queued or running
    jobs_today: int  # submitted since midnight UTC


@dataclass(frozen=True)
class Stats:
    """Numbers for the admins."""

    jobs_by_status: Mapping[JobStatus, int]
    mean_duration: float | None  # seconds from start to finish of finished jobs
    users_today: int
    jobs_today: int


@dataclass(frozen=True)
class QueuePosition:
    """Where a queued job stands and roughly when it will be done."""

    position: int  # 1 is next
    running: int
    estimate: float | None  # seconds until the job is done; None before any job finished


@dataclass(frozen=True)
class InboxItem:
    """A picture message being handled: what handling it again after a restart needs.

    A private chat's message from `user_id`, carrying one file: a photo (its largest size, with `width`
    and `height`), a document (with its `mime_type`), or an animation, video or video note (with its size
    and `duration`); `media` says which.
    """

    update_id: int
    chat_id: int
    user_id: int
    first_name: str
    language_code: str | None
    message_id: int
    sent_at: float  # the message's date, Unix time
    caption: str | None
    file_id: str
    file_unique_id: str
    file_size: int | None = None
    width: int | None = None
    height: int | None = None
    mime_type: str | None = None
    # "photo", "document", "animation", "video" or "video_note"; None (rows from before animations): a
    # photo when it has a size, else a document.
    media: str | None = None
    duration: int | None = None  # seconds, of an animation, video or video note
    attempts: int = 0  # runs that have started handling it, this one included


@dataclass(frozen=True)
class RecoveryReport:
    """What opening the store found left over from the last run."""

    requeued: tuple[int, ...] = ()  # job ids that were running and wait again
    failed: tuple[Job, ...] = ()  # jobs that were running and ran out of attempts: the chat is to be told
    undelivered: tuple[Job, ...] = ()  # done jobs whose result still has to be sent
