"""The outputs of a job: destinations checked before work, the chunks bound as a VRT, and
the single GeoTIFF or COG made from it."""
from __future__ import annotations

import contextlib
import math
import os
from xml.sax.saxutils import escape

from osgeo import gdal

from ..errors import DemError
from ..grid import destinations, safety
from ..grid.files import commit_partial, partial_path, remove_raster
from ..grid.progress import Monitor
from ..grid.raster import RasterInfo, spatial_reference
from ..grid.writing import GeoTiffWriter, check_free_bytes, check_writable, estimated_bytes
from .chunks import Chunk, Job, _named_for, chunk_path
from .inputs import list_tiles
from .manifest import job_folder


def check_free_space(folder: str, out_info: RasterInfo, cells: int, single_file: bool) -> None:
    """DemError when the output folder plainly cannot hold the result (an estimate)."""
    need = estimated_bytes(cells, out_info.data_type)
    if single_file:
        need *= 2  # the chunks and the final file exist together for a moment
    check_free_bytes(folder, need)


def _output_kind(output: str, cog: bool, what: str = "OUTPUT") -> str:
    """vrt (binds the chunks), gtiff, cog, or convert (a GeoTIFF made first, then written in
    the format the extension names: core.grid.destinations)."""
    dest = destinations.resolve(output, what, allow_vrt=True)
    if dest.driver == "VRT":
        if cog:
            raise DemError("A Cloud-Optimized GeoTIFF output must end in .tif, not .vrt.")
        return "vrt"
    if not dest.is_geotiff:
        if cog:
            raise DemError(f"A Cloud-Optimized GeoTIFF output must end in .tif, not "
                           f"'{os.path.splitext(output)[1]}'.")
        return "convert"
    return "cog" if cog else "gtiff"


def check_paths(source, output: str, cog: bool = False, spread_output: str | None = None) -> str:
    """The quick checks of a job's input and outputs, before any cluster is started; returns the
    output kind (vrt, gtiff, cog or convert)."""
    kind = _output_kind(output, cog)
    if spread_output:
        _output_kind(spread_output, cog, "The spread output")
        check_writable(os.path.abspath(spread_output))
    if not isinstance(source, (list, tuple)) and not str(source).startswith("/vsi") \
            and not os.path.exists(str(source)):
        raise DemError(f"The input '{source}' does not exist.")
    check_writable(os.path.abspath(output))
    inputs = [("INPUT", str(s)) for s in (source if isinstance(source, (list, tuple))
                                          else [source])]
    if isinstance(source, str) and not os.path.isdir(source):
        with contextlib.suppress(DemError):
            inputs += [("INPUT", tile) for tile in list_tiles(source) or []]
    outputs = [("OUTPUT", destinations.resolve(output, allow_vrt=True).path, "")]
    if spread_output:
        outputs.append(("OUTPUT_SPREAD", destinations.resolve(
            spread_output, "The spread output", allow_vrt=True).path, ""))
    safety.check_apart(inputs, outputs, [("OUTPUT", job_folder(outputs[0][1]))])
    return kind


def _bind_outputs(outputs: dict[str, tuple[str, str]], job: Job, chunks: list[Chunk],
                  records: list[dict], monitor: Monitor) -> None:
    """Each output (kernel extra → path, kind) from the finished chunks: a VRT of them, or a
    GeoTIFF / COG translated from such a VRT in the job folder."""
    single = [extra for extra, (_, kind) in outputs.items() if kind != "vrt"]
    for extra, (path, kind) in outputs.items():
        vrt = path if kind == "vrt" else os.path.join(job.folder,
                                                      _named_for("chunks", extra, ".vrt"))
        write_chunk_vrt(vrt, job, chunks, records, extra)
        if kind != "vrt":
            i = single.index(extra)
            translate(vrt, path, job.out_info.data_type, kind == "cog",
                      monitor.part(i / len(single), (i + 1) / len(single)))


def _remove_partials(folder: str) -> None:
    """Temporary files of chunk writers that died (a killed worker); nobody will finish them."""
    from ..grid.files import PARTIAL_TAG, remove_stale_partials

    names = {n.split(PARTIAL_TAG)[0][1:] for n in os.listdir(folder) if PARTIAL_TAG in n}
    for name in names:
        remove_stale_partials(os.path.join(folder, name))


def write_chunk_vrt(path: str, job: Job, chunks: list[Chunk], records: list[dict],
                    extra: str = "") -> None:
    """A VRT of the whole output grid with one source per finished chunk (empty ones are nodata
    through the VRT's own nodata), written under a temporary name and renamed into place;
    `extra` names one of the kernel's extras to bind instead of the result."""
    info = job.out_info
    s = job.kernel.scale
    gdal_type = {"Byte": "Byte", "Float32": "Float32"}[info.data_type]
    base = os.path.dirname(os.path.abspath(path))
    lines = [f'<VRTDataset rasterXSize="{info.width}" rasterYSize="{info.height}">']
    if info.crs_wkt:
        axes = spatial_reference(info.crs_wkt).GetDataAxisToSRSAxisMapping()
        mapping = ",".join(str(a) for a in axes)
        lines.append(f'  <SRS dataAxisToSRSAxisMapping="{mapping}">{escape(info.crs_wkt)}</SRS>')
    lines.append("  <GeoTransform>" + ", ".join(repr(float(v)) for v in info.geotransform)
                 + "</GeoTransform>")
    lines.append(f'  <VRTRasterBand dataType="{gdal_type}" band="1">')
    lines.append(f"    <NoDataValue>{_nodata_text(info.nodata)}</NoDataValue>")
    for chunk in chunks:
        if records[chunk.index]["state"] != "done":
            continue
        rel = os.path.relpath(chunk_path(job, chunk, extra), base)
        w, h = chunk.width * s, chunk.height * s
        lines += [
            "    <SimpleSource>",
            f'      <SourceFilename relativeToVRT="1">{escape(rel)}</SourceFilename>',
            "      <SourceBand>1</SourceBand>",
            f'      <SourceProperties RasterXSize="{w}" RasterYSize="{h}" '
            f'DataType="{gdal_type}" BlockXSize="{GeoTiffWriter.TILE}" '
            f'BlockYSize="{GeoTiffWriter.TILE}" />',
            f'      <SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}" />',
            f'      <DstRect xOff="{chunk.col * s}" yOff="{chunk.row * s}" xSize="{w}" '
            f'ySize="{h}" />',
            "    </SimpleSource>",
        ]
    lines += ["  </VRTRasterBand>", "</VRTDataset>", ""]
    partial = partial_path(path)
    try:
        with open(partial, "w", encoding="utf-8") as f:
            f.write("\n".join(lines))
        if not extra:
            job.kernel.describe_output(partial)
        commit_partial(partial, path)
    except (OSError, RuntimeError) as err:
        remove_raster(partial)
        raise DemError(f"Cannot write '{path}': {err}") from err


def _nodata_text(value: float) -> str:
    if value is None or math.isnan(value):
        return "nan"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def translate(vrt: str, output: str, data_type: str, cog: bool, monitor: Monitor) -> None:
    """The bound chunks as one tiled, DEFLATE-compressed GeoTIFF (or COG), made under a temporary
    name and renamed into place; the legend and nodata come from the VRT."""
    predictor = "1" if data_type == "Byte" else "3"
    if cog:
        options = ["COMPRESS=DEFLATE", f"PREDICTOR={'NO' if data_type == 'Byte' else 'YES'}",
                   "BIGTIFF=IF_SAFER", "NUM_THREADS=ALL_CPUS", "OVERVIEWS=AUTO"]
    else:
        options = ["TILED=YES", f"BLOCKXSIZE={GeoTiffWriter.TILE}",
                   f"BLOCKYSIZE={GeoTiffWriter.TILE}", "COMPRESS=DEFLATE",
                   f"PREDICTOR={predictor}", "BIGTIFF=IF_SAFER", "NUM_THREADS=ALL_CPUS"]
    partial = partial_path(output)

    def progress(fraction, _message, _data):
        monitor.report(fraction)
        return 0 if monitor.cancelled() else 1

    try:
        ds = gdal.Translate(partial, vrt, format="COG" if cog else "GTiff",
                            creationOptions=options, callback=progress)
        if ds is None:
            raise DemError(f"GDAL could not write '{output}'.")
        ds = None
        monitor.check()
        destinations.deliver(partial, destinations.resolve(output, allow_vrt=False))
    except RuntimeError as err:
        remove_raster(partial)
        monitor.check()
        raise DemError(f"Cannot write '{output}': {err}") from err
    except BaseException:
        remove_raster(partial)
        raise
