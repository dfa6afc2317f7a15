"""Survey points that agree exactly with a DEM whose heights are above the EGM96 geoid, given
as WGS84 ellipsoidal heights the way GNSS and ICESat-2 give them.

The conversion is the tests' own, independent of core.survey.vertical: PROJ through osr from the
DEM's compound CRS (UTM 44N + EGM96 height, EPSG:32644+5773) to WGS 84 3D (EPSG:4979), with
PROJ's ballpark fallback forbidden so that a missing grid fails here too.
"""
from __future__ import annotations

import numpy as np
from osgeo import gdal, osr

UTM_EGM96 = "EPSG:32644+5773"  # the bundled Mandakini DEM: SRTM, UTM 44N, EGM96 heights


def srs(text: str) -> osr.SpatialReference:
    out = osr.SpatialReference()
    out.SetFromUserInput(text)
    out.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return out


def wkt(text: str) -> str:
    return srs(text).ExportToWkt(["FORMAT=WKT2_2018"])


def declare_egm96(src: str, dst: str) -> str:
    """A copy of the Mandakini DEM that declares its compound CRS (GeoTIFF vertical keys)."""
    assert srs(gdal.Open(src).GetProjection()).GetAuthorityCode(None) == "32644"
    gdal.Translate(dst, src, outputSRS=UTM_EGM96)
    return dst


def ellipsoidal_points(dem: str, n: int = 200, seed: int = 0) -> dict:
    """n cell centres of `dem` amid valid cells, 3 cells or more from the border: UTM x, y,
    EGM96 height H (the cell's value) and the same points as WGS 84 lon, lat and ellipsoidal
    height h."""
    ds = gdal.Open(dem)
    band = ds.GetRasterBand(1)
    values = band.ReadAsArray().astype(np.float64)
    nodata = band.GetNoDataValue()
    x0, dx, _, y0, _, dy = ds.GetGeoTransform()
    valid = np.isfinite(values) if nodata is None else values != nodata
    usable = valid.copy()  # every cell a bicubic stencil (5 x 5 around a centre) touches
    for dr in range(-2, 3):
        for dc in range(-2, 3):
            usable &= np.roll(np.roll(valid, dr, axis=0), dc, axis=1)
    usable[:3, :] = usable[-3:, :] = False
    usable[:, :3] = usable[:, -3:] = False
    rows, cols = np.nonzero(usable)
    pick = np.random.default_rng(seed).choice(rows.size, n, replace=False)
    rows, cols = rows[pick], cols[pick]
    x, y = x0 + dx * (cols + 0.5), y0 + dy * (rows + 0.5)
    big_h = values[rows, cols]
    options = osr.CoordinateTransformationOptions()
    options.SetBallparkAllowed(False)
    ct = osr.CoordinateTransformation(srs(UTM_EGM96), srs("EPSG:4979"), options)
    lon, lat, h = np.array(ct.TransformPoints(np.column_stack([x, y, big_h]))).T
    assert np.all(np.abs((h - big_h) + 25.7) < 8)  # EGM96 lies ~26 m below WGS84 here
    return {"x": x, "y": y, "H": big_h, "lon": lon, "lat": lat, "h": h}
