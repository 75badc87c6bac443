"""Optical flow between a clip's frames, warping by it, and where it can be trusted.

OpenCV's DIS flow (Kroeger et al. 2016) needs no trained weights. A painted frame t−1 is carried to frame t
by backward warping: each pixel of frame t looks up where it was in frame t−1 (the flow from t to t−1).
Where that is unreliable (occluded, newly uncovered, or on a motion boundary) the reliability mask is 0,
as Ruder et al. 2016 ("Artistic style transfer for videos") mark it from forward-backward consistency.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

# Ruder et al.'s thresholds: a pixel is occluded where the forward flow at the point the backward flow
# leads to does not cancel it, |w̃ + w'|² > OCCLUSION_SHARE · (|w̃|² + |w'|²) + OCCLUSION_FLOOR (pixels²) …
OCCLUSION_SHARE = 0.01
OCCLUSION_FLOOR = 0.5
# … and on a motion boundary where the flow changes fast:
# |∇u|² + |∇v|² > BOUNDARY_SHARE · |w'|² + BOUNDARY_FLOOR.
BOUNDARY_SHARE = 0.01
BOUNDARY_FLOOR = 0.002


def flow(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(H, W, 2) float32 (dx, dy): where each pixel of `source` is in `target`; both (H, W, 3) RGB 0..255."""
    dis = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    # None: no initial flow (OpenCV's stubs leave that out; DIS would start from a given one).
    found = dis.calc(_gray(source), _gray(target), None)  # type: ignore[call-overload]
    return np.asarray(found, np.float32)


def warp(image: np.ndarray, flow_field: np.ndarray) -> np.ndarray:
    """`image` (H, W, …) sampled at x + flow(x) for each pixel x (bilinear, edges repeated): with the flow
    from frame t to frame t−1, frame t−1's image moved to where its content is in frame t."""
    height, width = flow_field.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    map_x = grid_x + flow_field[..., 0]
    map_y = grid_y + flow_field[..., 1]
    source = np.ascontiguousarray(image, dtype=np.float32)
    out = cv2.remap(source, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(image.shape)  # remap drops a trailing channel axis of 1


def reliable(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """(H, W) float32: 1 where frame t's pixel can be taken from frame t−1, 0 where not.

    `forward` is the flow from t−1 to t, `backward` from t to t−1. A pixel is unreliable where the two
    do not cancel (occlusion, disocclusion) or where the backward flow changes sharply (motion boundary).
    """
    ahead = warp(forward, backward)  # w̃(x) = forward(x + backward(x))
    sum_sq = np.sum(np.square(ahead + backward), axis=-1)
    norms = np.sum(np.square(ahead), axis=-1) + np.sum(np.square(backward), axis=-1)
    occluded = sum_sq > OCCLUSION_SHARE * norms + OCCLUSION_FLOOR
    du_y, du_x = np.gradient(backward[..., 0])
    dv_y, dv_x = np.gradient(backward[..., 1])
    gradient = du_x**2 + du_y**2 + dv_x**2 + dv_y**2
    boundary = gradient > BOUNDARY_SHARE * np.sum(np.square(backward), axis=-1) + BOUNDARY_FLOOR
    return (~(occluded | boundary)).astype(np.float32)


@dataclass(frozen=True)
class Motion:
    """How frame t follows frame t−1: the flow to warp t−1's painting by, and where it is reliable."""

    backward: np.ndarray  # (H, W, 2) float32, from frame t to frame t−1
    mask: np.ndarray  # (H, W) float32, 1 reliable, 0 occluded or on a motion boundary

    def carry(self, previous: np.ndarray) -> np.ndarray:
        """Frame t−1's (H, W, C) image moved to frame t."""
        return warp(previous, self.backward)


def motion(previous: np.ndarray, current: np.ndarray) -> Motion:
    """The `Motion` from source frame `previous` to `current`, both (H, W, 3) RGB 0..255, same size."""
    backward = flow(current, previous)
    return Motion(backward, reliable(flow(previous, current), backward))


def flicker(frames: Sequence[np.ndarray], motions: Sequence[Motion]) -> float:
    """Mean |frame_t − frame_{t−1} warped to t| over reliable pixels and channels, over t (pixel units).

    `motions[t − 1]` is the source clip's motion from frame t−1 to t, so painted frames and the source's
    own are measured by the same flow: steady paintings score about what the source does.
    """
    if len(frames) < 2:
        return 0.0
    if len(motions) != len(frames) - 1:
        raise ValueError(f"{len(motions)} motions for {len(frames)} frames")
    total, count = 0.0, 0.0
    for before, after, move in zip(frames[:-1], frames[1:], motions, strict=True):
        difference = np.abs(after - move.carry(before)).mean(axis=-1)  # (H, W)
        total += float(np.sum(difference * move.mask))
        count += float(np.sum(move.mask))
    return total / max(count, 1.0)


def _gray(image: np.ndarray) -> np.ndarray:
    """(H, W) uint8 luminance, the input DIS takes."""
    return cv2.cvtColor(np.clip(np.rint(image), 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
