"""A constant-velocity Kalman filter over box centre, aspect ratio and height (as ByteTrack's),
vectorised over all tracks at once, with the time step in frames (variable frame rates and
skipped frames predict further)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["initiate", "predict", "update", "xyah_to_xyxy", "xyxy_to_xyah"]

F64 = npt.NDArray[np.float64]
W_POS = 1.0 / 20
W_VEL = 1.0 / 160
_H = np.eye(4, 8)


def xyxy_to_xyah(xyxy: npt.NDArray[np.floating]) -> F64:
    """[n, 4] boxes -> [n, 4] (centre x, centre y, width / height, height)."""
    b = np.asarray(xyxy, np.float64)
    w = b[:, 2] - b[:, 0]
    h = np.maximum(b[:, 3] - b[:, 1], 1e-6)
    return np.stack([b[:, 0] + w / 2, b[:, 1] + h / 2, w / h, h], axis=1)


def xyah_to_xyxy(xyah: F64) -> F64:
    """Inverse of `xyxy_to_xyah`."""
    w = xyah[:, 2] * xyah[:, 3]
    return np.stack(
        [
            xyah[:, 0] - w / 2,
            xyah[:, 1] - xyah[:, 3] / 2,
            xyah[:, 0] + w / 2,
            xyah[:, 1] + xyah[:, 3] / 2,
        ],
        axis=1,
    )


def initiate(z: F64) -> tuple[F64, F64]:
    """Means [n, 8] and covariances [n, 8, 8] of new tracks from measurements [n, 4]."""
    n = len(z)
    mean = np.concatenate([z, np.zeros((n, 4))], axis=1)
    h = z[:, 3]
    p, v = 2 * W_POS * h, 10 * W_VEL * h
    std = np.stack([p, p, np.full(n, 1e-2), p, v, v, np.full(n, 1e-5), v], axis=1)
    cov = np.zeros((n, 8, 8))
    idx = np.arange(8)
    cov[:, idx, idx] = std**2
    return mean, cov


def predict(mean: F64, cov: F64, dt: F64) -> tuple[F64, F64]:
    """Advance each track by its own `dt` [n] frames."""
    n = len(mean)
    if n == 0:
        return mean, cov
    h = mean[:, 3]
    std = np.stack(
        [
            W_POS * h,
            W_POS * h,
            np.full(n, 1e-2),
            W_POS * h,
            W_VEL * h,
            W_VEL * h,
            np.full(n, 1e-5),
            W_VEL * h,
        ],
        axis=1,
    )
    q = (std**2) * dt[:, None]
    f = np.broadcast_to(np.eye(8), (n, 8, 8)).copy()
    f[:, np.arange(4), np.arange(4) + 4] = dt[:, None]
    mean = np.einsum("nij,nj->ni", f, mean)
    cov = f @ cov @ f.transpose(0, 2, 1)
    cov[:, np.arange(8), np.arange(8)] += q
    return mean, cov


def update(mean: F64, cov: F64, z: F64) -> tuple[F64, F64]:
    """Correct tracks [n] with their measurements z [n, 4]."""
    n = len(mean)
    if n == 0:
        return mean, cov
    h = mean[:, 3]
    r = np.stack([W_POS * h, W_POS * h, np.full(n, 1e-1), W_POS * h], axis=1) ** 2
    s = cov[:, :4, :4].copy()
    s[:, np.arange(4), np.arange(4)] += r
    pht = cov[:, :, :4]  # cov @ H^T
    gain = np.linalg.solve(s, pht.transpose(0, 2, 1)).transpose(0, 2, 1)  # [n, 8, 4]
    innovation = z - mean[:, :4]
    mean = mean + np.einsum("nij,nj->ni", gain, innovation)
    cov = cov - gain @ s @ gain.transpose(0, 2, 1)
    return mean, cov
