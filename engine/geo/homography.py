"""Fixed cameras on flat ground: the image <-> ground homography, fitted from point pairs.

Four or more pairs (pixel, ground metres in the site's east-north frame) give the plane-to-image
mapping by least squares (OpenCV's DLT with normalisation); the fit reports its reprojection
error in pixels and in metres so an operator can judge a calibration before using it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.errors import ConfigError

__all__ = ["GroundHomography", "fit_homography"]

F64 = npt.NDArray[np.float64]


def _apply(H: F64, pts: F64) -> F64:
    p = np.column_stack([np.asarray(pts, np.float64), np.ones(len(pts))]) @ H.T
    with np.errstate(divide="ignore", invalid="ignore"):
        return p[:, :2] / p[:, 2:3]


@dataclass(frozen=True, slots=True)
class GroundHomography:
    """Image <-> ground plane of one fixed camera.

    Attributes:
        H: 3x3 ground (x east, y north, metres) -> image pixels, scaled so that ground points
            in front of the camera have a positive homogeneous scale (as K [r1 r2 t] does).
        rms_px: RMS reprojection error of the calibration points in the image.
        rms_m: RMS error of the calibration points on the ground.
        errors_px, errors_m: per point.
        front_sign: sign of the homogeneous scale of ground points in front of the camera
            (+1 for K[r1 r2 t]; a fitted H may carry either sign).
    """

    H: F64
    front_sign: float = 1.0  # sign of the homogeneous scale of ground points the camera sees
    rms_px: float = 0.0
    rms_m: float = 0.0
    errors_px: tuple[float, ...] = ()
    errors_m: tuple[float, ...] = ()

    def to_image(self, ground_xy: F64) -> F64:
        """Ground points (n, 2) -> pixels (n, 2)."""
        return _apply(self.H, ground_xy)

    def to_ground(self, uv: F64) -> F64:
        """Pixels (n, 2) -> ground points (n, 2); nan for pixels above the horizon."""
        Hi = np.linalg.inv(self.H)
        p = np.column_stack([np.asarray(uv, np.float64), np.ones(len(uv))]) @ Hi.T
        with np.errstate(divide="ignore", invalid="ignore"):
            out = p[:, :2] / p[:, 2:3]
        # rays that meet the ground behind the camera (above the horizon) have the other sign
        out[(p[:, 2] * self.front_sign) <= 0] = np.nan
        return out

    def metres_per_pixel(self, uv: F64) -> F64:
        """Ground distance (m) that one pixel spans at each pixel (n,): the larger singular
        value of the local Jacobian of `to_ground` (how uncertain a position read there is)."""
        uv = np.asarray(uv, np.float64)
        dx = np.array([0.5, 0.0])
        dy = np.array([0.0, 0.5])
        gx = self.to_ground(uv + dx) - self.to_ground(uv - dx)  # per pixel: step is 1 px
        gy = self.to_ground(uv + dy) - self.to_ground(uv - dy)
        J = np.stack([gx, gy], axis=2)  # (n, 2, 2)
        out = np.full(len(uv), np.inf)
        ok = np.isfinite(J).all(axis=(1, 2))  # at the horizon a neighbour maps nowhere
        if ok.any():
            out[ok] = np.linalg.svd(J[ok], compute_uv=False)[:, 0]
        return out


def _normalized_dlt(src: F64, dst: F64) -> F64 | None:
    """The least-squares homography src -> dst by the normalised DLT (Hartley), in float64
    (OpenCV's fit rounds its input to float32: 0.01 px errors at grazing views). None when the
    points do not fix one (fewer than 4 in general position)."""

    def normalise(p: F64) -> tuple[F64, F64]:
        c = p.mean(axis=0)
        d = float(np.hypot(*(p - c).T).mean())
        k = np.sqrt(2.0) / d if d > 0 else 1.0
        return np.array([[k, 0, -k * c[0]], [0, k, -k * c[1]], [0, 0, 1.0]]), (p - c) * k

    t_src, a = normalise(src)
    t_dst, b = normalise(dst)
    x, y, u, v = a[:, 0], a[:, 1], b[:, 0], b[:, 1]
    one, zero = np.ones(len(a)), np.zeros(len(a))
    rows = np.concatenate(
        [
            np.column_stack([-x, -y, -one, zero, zero, zero, u * x, u * y, u]),
            np.column_stack([zero, zero, zero, -x, -y, -one, v * x, v * y, v]),
        ]
    )
    _, sv, vt = np.linalg.svd(rows)
    if np.count_nonzero(sv > 1e-9 * sv[0]) < 8:  # more than one solution: no plane fixed
        return None
    h: F64 = np.linalg.inv(t_dst) @ vt[-1].reshape(3, 3) @ t_src
    return h


def fit_homography(image_px: F64, ground_m: F64) -> GroundHomography:
    """Least-squares homography from >= 4 pixel/ground pairs, with its errors.

    Raises:
        ConfigError: fewer than 4 pairs, or points that fix no plane (three on a line, ...).
    """
    image_px = np.asarray(image_px, np.float64).reshape(-1, 2)
    ground_m = np.asarray(ground_m, np.float64).reshape(-1, 2)
    if len(image_px) != len(ground_m):
        raise ConfigError(f"calibration: {len(image_px)} image points but {len(ground_m)} ground")
    if len(image_px) < 4:
        raise ConfigError(f"calibration: at least 4 point pairs are needed, got {len(image_px)}")
    H = _normalized_dlt(ground_m, image_px)
    if H is None or not np.all(np.isfinite(H)) or abs(np.linalg.det(H)) < 1e-12:
        raise ConfigError("calibration: the points fix no plane (are three of them on a line?)")
    H = H / H[2, 2]
    w = (np.column_stack([ground_m, np.ones(len(ground_m))]) @ H.T)[:, 2]
    if np.median(w) < 0:  # H and -H are the same mapping: choose the one that keeps the
        H = -H  # calibration points (in front of the camera) at a positive scale
    sign = 1.0
    hom = GroundHomography(H, sign)
    err_px = np.hypot(*(hom.to_image(ground_m) - image_px).T)
    err_m = np.hypot(*(hom.to_ground(image_px) - ground_m).T)
    return GroundHomography(
        H,
        sign,
        float(np.sqrt(np.mean(err_px**2))),
        float(np.sqrt(np.mean(err_m**2))),
        tuple(err_px.tolist()),
        tuple(err_m.tolist()),
    )
