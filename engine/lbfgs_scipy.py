"""scipy's L-BFGS-B on the style objective, bounded to valid pixels, driven as a generator of evaluations.

scipy owns the loop, so it runs on a helper thread that hands every point it wants evaluated to the
generator and waits for the answer: the network runs on the caller's thread, the caller sees each
evaluation and can stop between any two, and no work runs ahead of it.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Generator

import numpy as np
from scipy.optimize import Bounds, minimize

from engine.params import Losses

# Pairs of correction vectors L-BFGS keeps (scipy's default); each costs 2 × 8 bytes per input value.
MEMORY = 10

# (preprocessed (1, H, W, 3) float32 image) → (content, style, tv, total) as float64 and the float64 gradient.
LossAndGrad = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


class _Stop(Exception):
    """Raised inside scipy's objective to end the run: budget spent or the caller went away."""


def lbfgs(
    loss_and_grad: LossAndGrad,
    start: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    evaluations: int,
    previews: frozenset[int] = frozenset(),
    should_stop: Callable[[], bool] = lambda: False,
) -> Generator[tuple[int, Losses, np.ndarray | None], None, tuple[np.ndarray, Losses]]:
    """Minimise from `start` within [low, high] (per channel, (3,)) using at most `evaluations` evaluations.

    Yields (evaluation number, losses of the evaluated point, best image so far on the numbers in
    `previews`, else None); returns the lowest-loss image and its losses. `should_stop` is asked before
    every evaluation after the first and ends the run early; so does closing the generator. Should scipy
    still end early (its line search fails to find a lower point), it restarts from the best point while
    that helps, and the generator may end before `evaluations`.
    """
    shape = start.shape
    lower = np.broadcast_to(low, shape).ravel().astype(np.float64)
    upper = np.broadcast_to(high, shape).ravel().astype(np.float64)
    # The helper thread only runs scipy's bookkeeping; TensorFlow runs here, on the caller's thread, where
    # its evaluations are faster than from a helper thread.
    points: queue.Queue[np.ndarray | BaseException | None] = queue.Queue(1)
    replies: queue.Queue[tuple[float, np.ndarray] | None] = queue.Queue(1)
    best: list[tuple[np.ndarray, Losses]] = []

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        points.put(x)
        reply = replies.get()
        if reply is None:
            raise _Stop
        return reply

    def run() -> None:
        x = np.clip(start.ravel().astype(np.float64), lower, upper)
        try:
            while True:
                before = best[0][1].total if best else np.inf
                minimize(
                    fun,
                    x,
                    jac=True,
                    method="L-BFGS-B",
                    bounds=Bounds(lower, upper),
                    # No tolerance stops it: the gradient of this loss is tiny per pixel, and scipy's
                    # default tolerances end a run early while the loss is still falling.
                    options={
                        "maxcor": MEMORY,
                        "maxiter": evaluations,
                        "maxfun": evaluations + 1,
                        "ftol": 0.0,
                        "gtol": 0.0,
                    },
                )
                # Converged before the budget (the generator is waiting for the next point): restart from
                # the best point while that still helps.
                if not best or best[0][1].total >= before:
                    break
                x = best[0][0].ravel().astype(np.float64)
            points.put(None)
        except _Stop:
            points.put(None)
        except BaseException as exc:  # handed to the generator, which re-raises it
            points.put(exc)

    thread = threading.Thread(target=run, name="lbfgs", daemon=True)
    thread.start()
    count = 0
    try:
        while count < evaluations:
            point = points.get()
            if point is None:
                break
            if isinstance(point, BaseException):
                raise point
            count += 1
            image = point.reshape(shape).astype(np.float32)
            parts, grad = loss_and_grad(image)
            losses = Losses(*(float(v) for v in parts))
            if not best or losses.total < best[0][1].total:
                best[:] = [(image, losses)]
            yield count, losses, best[0][0] if count in previews else None
            if should_stop():
                break
            replies.put((losses.total, grad.ravel()))
    finally:
        # Budget spent or the caller stopped: answer scipy's next request with "stop" until it unwinds.
        while thread.is_alive():
            with contextlib.suppress(queue.Full):
                replies.put(None, timeout=0.05)
            with contextlib.suppress(queue.Empty):
                points.get_nowait()
        thread.join()
    if not best:
        raise RuntimeError("L-BFGS made no evaluation")
    return best[0]
