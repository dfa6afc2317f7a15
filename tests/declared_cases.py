"""Values both front doors must refuse (processing.run / qgis_process and core.batch), with the
start of the message each gives: the parameter's id, what is wrong, what is allowed."""

REFUSED = [
    ("superresolution", {"scale": 2.5}, "SCALE: 2.5 is not a whole number; allowed: a whole "
                                        "number ≥ 2."),
    ("superresolution", {"scale": 1}, "SCALE: 1 is out of range; allowed: a whole number ≥ 2."),
    ("superresolution", {"tile_size": -1}, "TILE_SIZE: -1 is out of range"),
    ("superresolution", {"tile_size": 4}, "TILE_SIZE: 4 is too small; allowed: 0 (automatic) or "
                                          "a whole number ≥ 8."),
    ("superresolution", {"device": "tpu"}, "DEVICE: 'tpu' is not an accepted value"),
    ("attraction", {"scale": 2.5}, "SCALE: 2.5 is not a whole number"),
    ("attraction", {"neighbourhood": 3}, "NEIGHBOURHOOD: '3' is not an accepted value; use the "
                                         "option's number or name: 0 (touching), 1 (quadrant) "
                                         "or 2 (surrounding)."),
    ("tpi", {"radius": 0.4}, "RADIUS: 0.4 cells is less than one cell"),
    ("tpi", {"radius": 0}, "RADIUS: 0 is out of range; allowed: a number > 0."),
    ("tpi", {"radius": "nan"}, "RADIUS: nan is not a finite number"),
    ("tpi", {"shape": "annulus", "radius": 2, "inner_radius": 3},
     "INNER_RADIUS (3) must be at most RADIUS (2)"),
    ("landforms", {"small_radius": 30}, "SMALL_RADIUS (30) must be smaller than LARGE_RADIUS "
                                        "(22)."),
    ("landforms", {"small_radius": 0.5, "large_radius": 3},
     "SMALL_RADIUS: 0.5 cells is less than one cell"),
    ("landforms", {"slope_threshold": 95}, "SLOPE_THRESHOLD: 95 is out of range; allowed: a "
                                           "number from 0 to 90."),
    ("landforms", {"scheme": "x"}, "SCHEME: 'x' is not an accepted value"),
]
