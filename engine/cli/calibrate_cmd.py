"""`lookout calibrate POINTS.yaml`: fit a fixed camera's ground homography, report its errors.

POINTS.yaml holds at least four points, each an image pixel and where it lies on the ground:

    geo: {lat: 31.2304, lon: 121.4737}     # needed only for points given in lat/lon
    points:
      - {image: [412, 655], ground: [-4.0, 6.5]}     # metres east/north of the site origin
      - {image: [1003, 640], latlon: [31.23046, 121.47381]}
      ...

It prints each point's reprojection error (pixels and metres) and the RMS, and with --out writes
the `calibration:` block to paste into the source's config.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add the subcommand."""
    p = sub.add_parser("calibrate", help="fit a fixed camera's image-to-ground mapping")
    p.add_argument("points", type=Path, help="YAML with geo (optional) and points")
    p.add_argument("--out", type=Path, help="write the calibration block here (YAML)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Fit, print the errors, write the block."""
    import numpy as np
    import yaml
    from pydantic import BaseModel, ConfigDict, Field

    from engine.config import CalibrationConfig, CalibrationPoint, GeoConfig
    from engine.geo.geodesy import GeoOrigin
    from engine.geo.locate import homography_of
    from engine.yamlconf import parse_yaml_model, read_text

    class PointsFile(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)
        geo: GeoConfig | None = None
        points: list[CalibrationPoint] = Field(min_length=4)

    doc = parse_yaml_model(read_text(args.points), PointsFile, str(args.points))
    origin = GeoOrigin(doc.geo.lat, doc.geo.lon, doc.geo.alt_m) if doc.geo else None
    hom = homography_of(CalibrationConfig(points=doc.points), origin)
    pts = doc.points
    print(f"{'point':>5}  {'image':>16}  {'error px':>8}  {'error m':>8}")
    for k, (p, epx, em) in enumerate(zip(pts, hom.errors_px, hom.errors_m, strict=True)):
        print(f"{k:>5}  {p.image[0]:>7.1f},{p.image[1]:>7.1f}  {epx:>8.2f}  {em:>8.3f}")
    print(
        f"RMS reprojection error: {hom.rms_px:.2f} px, {hom.rms_m:.3f} m on the ground "
        f"({len(pts)} points)"
    )
    block = {"calibration": {"homography": np.round(hom.H, 9).tolist(), "pixel_sigma": 3.0}}
    if args.out:
        head = (
            f"# lookout calibrate {args.points.name}: RMS {hom.rms_px:.2f} px, {hom.rms_m:.3f} m\n"
        )
        args.out.write_text(head + yaml.safe_dump(block, sort_keys=False))
        print(f"wrote {args.out}")
    return 0
