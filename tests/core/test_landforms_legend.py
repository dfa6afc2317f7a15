"""The landform legend travels inside the GeoTIFF: a copied .tif without its .aux.xml keeps the
colour table and the class names."""
import os
import shutil

import numpy as np
import pytest
from osgeo import gdal

from core.terrain import landforms as lf
from core.terrain import tpi

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "data")
GEO_DEM = os.path.join(DATA, "jacksboro_fault_srtm3.tif")


@pytest.mark.parametrize("scheme", lf.SCHEMES)
def test_copied_tif_keeps_colours_and_class_names(tmp_path, scheme):
    settings = lf.Settings(tpi.Neighbourhood("square", 2), tpi.Neighbourhood("square", 9),
                           scheme)
    out = str(tmp_path / "lf.tif")
    lf.landforms_raster(GEO_DEM, out, settings)
    assert os.path.exists(out + ".aux.xml")  # category names and RAT, for GDAL 3.6 readers
    copy = str(tmp_path / "copied.tif")
    shutil.copy(out, copy)  # the .tif alone, as a user copying it would
    ds = gdal.Open(copy)
    band = ds.GetRasterBand(1)
    classes = lf.CLASSES[scheme]
    assert {k: v for k, v in band.GetMetadata().items()} == {
        f"CLASS_{code}": name for code, (name, _) in classes.items()}
    assert band.GetDescription() == lf.SCHEME_TITLES[scheme]
    table = band.GetColorTable()
    for code, (_, rgb) in classes.items():
        assert table.GetColorEntry(code) == (*rgb, 255)
    assert table.GetColorEntry(0)[3] == 0  # nodata transparent
    assert set(np.unique(band.ReadAsArray())) <= set(classes) | {0}
