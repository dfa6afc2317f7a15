"""One declaration per algorithm (core.params.AlgorithmSpec), in the order the provider lists
them: parameters, outputs, help, and for the raster algorithms the chunk kernel for large areas.
"""
from __future__ import annotations

from ..errors import DemError
from . import attraction, landforms, superresolution, surveyrmse, tpi

SPECS = {spec.id: spec for spec in (superresolution.SPEC, attraction.SPEC, tpi.SPEC,
                                    landforms.SPEC, surveyrmse.SPEC)}
# The algorithms the large-area engine and core.batch run: those with a chunk kernel.
RASTER_ALGORITHMS = tuple(name for name, spec in SPECS.items() if spec.kernel is not None)


def spec_of(algorithm: str, chunked: bool = False):
    """The declaration of `algorithm`; `chunked`: one the large-area engine runs."""
    names = RASTER_ALGORITHMS if chunked else tuple(SPECS)
    if algorithm not in names:
        raise DemError(f"Unknown algorithm '{algorithm}'; choose one of {', '.join(names)}.")
    return SPECS[algorithm]
