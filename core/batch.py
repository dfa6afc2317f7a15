"""Command line for large areas, without QGIS: `python -m core.batch ALGORITHM INPUT OUTPUT`.

ALGORITHM is superresolution, attraction, tpi or landforms; the options are the Processing
parameters in lower case (--scale 2, --small-radius 2 or --small_radius 2, ...) with the
Processing defaults. INPUT is a raster, a VRT, a folder of tiles or a text file listing them.
Without --scheduler the job runs on a Dask LocalCluster with one worker per core (--workers N for
N, --workers 0 for this process without Dask); with --scheduler it runs on that cluster. Running
the same command again after a crash or Ctrl-C computes only the missing chunks.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import time

from .declarations import RASTER_ALGORITHMS, SPECS
from .errors import Cancelled, DemError
from .grid.progress import Monitor
from .largearea import engine, mosaic, outputs
from .largearea import manifest as manifests
from .params import BOOLEAN, ENUM, FILE, AlgorithmSpec, Param

EPILOG = """\
examples:
  python -m core.batch tpi dem.tif tpi.tif --radius 5 --standardize
  python -m core.batch landforms tiles/ landforms.vrt --chunk-size 4096
  python -m core.batch superresolution srtm.vrt x2.tif --cog --scheduler tcp://head:8786

Output: .vrt binds the chunk files (kept in OUTPUT's sibling folder <name>_chunks/); .tif is
one tiled DEFLATE GeoTIFF (or a COG with --cog) made from them, after which the chunk folder is
removed. The folder's manifest.json lets a rerun of the same command resume.
"""


class ProgressBar(Monitor):
    """Chunks done / total, output throughput and ETA on stderr: redrawn in place on a terminal,
    a line every few seconds otherwise (logs)."""

    WIDTH = 24
    LOG_INTERVAL_S = 5.0

    def __init__(self, stream=None, quiet: bool = False):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._phase = None
        self._start = 0.0
        self._start_done = 0
        self._last_line = 0.0
        self._drawn = False

    def chunks(self, phase: str, done: int, total: int, cells: int) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        if phase != self._phase:
            self._phase, self._start, self._start_done = phase, now, done
        elapsed = max(now - self._start, 1e-9)
        computed = done - self._start_done
        filled = int(self.WIDTH * done / max(total, 1))
        bar = "#" * filled + "." * (self.WIDTH - filled)
        rate = f"{cells / elapsed / 1e6:7.2f} MP/s" if cells else "     – MP/s"
        eta = _clock((total - done) * elapsed / computed) if computed else "–:––:––"
        line = f"{phase:<10} {done:>6}/{total} chunks [{bar}] {rate}  ETA {eta}"
        if self.tty:
            self.stream.write("\r" + line)
            self._drawn = True
            if done == total:
                self.stream.write("\n")
                self._drawn = False
            self.stream.flush()
        elif done == total or now - self._last_line >= self.LOG_INTERVAL_S or computed == 0:
            self.stream.write(line + "\n")
            self.stream.flush()
            self._last_line = now

    def _say(self, text: str) -> None:
        if self._drawn:
            self.stream.write("\n")
            self._drawn = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def info(self, message: str) -> None:
        if not self.quiet:
            self._say(message)

    def warn(self, message: str) -> None:
        self._say(f"warning: {message}")


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _option(parser, name: str, **kwargs) -> None:
    """--name-with-dashes and --name_with_underscores for one parameter."""
    dashed = "--" + name.replace("_", "-")
    flags = [dashed] if "_" not in name else [dashed, "--" + name]
    parser.add_argument(*flags, dest=name, **kwargs)


def _parse(param: Param):
    """An argparse type: the parameter's own check, its refusal as argparse's message."""

    def parse(text: str):
        try:
            return param.validate(text)
        except DemError as err:
            raise argparse.ArgumentTypeError(str(err)) from err

    parse.__name__ = param.key  # argparse names the type in some messages
    return parse


def _algorithm_options(parser, spec: AlgorithmSpec) -> None:
    """The algorithm's options, from its declaration: each one's help is the line the dialog's
    help shows for it (label, what it does, default, allowed values)."""
    for param in spec.option_params:
        # %% : argparse formats help strings with %.
        text = param.describe().replace("%", "%%")
        if param.kind == BOOLEAN:
            parser.add_argument(*param.flags, dest=param.key, default=param.default,
                                action=argparse.BooleanOptionalAction, help=text)
            continue
        choices, _ = param.options()
        kind = param.kind != ENUM or choices  # no bundled model: take any name
        parser.add_argument(*param.flags, dest=param.key, default=param.default_value(),
                            type=_parse(param) if kind else str, help=text,
                            metavar="PATH" if param.kind == FILE else None)
    for output in spec.outputs:
        if output.option:
            parser.add_argument(*output.flags, dest=output.key, default=None, metavar="PATH",
                                help=output.describe().replace("%", "%%"))


def _common_options(parser) -> None:
    parser.add_argument("input", metavar="INPUT",
                        help="a raster, a VRT, a folder of tiles or a text file listing them")
    parser.add_argument("output", metavar="OUTPUT", help="the result: .tif or .vrt")
    engine = parser.add_argument_group("engine")
    engine.add_argument("--scheduler", metavar="ADDR", default=None,
                        help="Dask scheduler address (tcp://host:8786) or scheduler file; "
                             "default: a LocalCluster on this machine")
    engine.add_argument("--workers", type=int, default=None, metavar="N",
                        help="LocalCluster worker processes (default: one per core; 0 = in this "
                             "process, no Dask); with --scheduler: wait for N workers")
    _option(engine, "memory_limit", default="auto",
            help="memory limit per LocalCluster worker, e.g. 4GB (default: RAM / workers)")
    job = parser.add_argument_group("job")
    _option(job, "chunk_size", type=int, default=mosaic.DEFAULT_CHUNK,
            help="input cells per chunk side (default %(default)s)")
    job.add_argument("--cog", action="store_true",
                     help="make OUTPUT (.tif) a Cloud-Optimized GeoTIFF")
    _option(job, "keep_chunks", action="store_true",
            help="keep the chunk folder after writing a .tif")
    job.add_argument("--overwrite", action="store_true",
                     help="replace an existing OUTPUT and discard a recorded job whose "
                          "parameters differ (a matching one is always resumed)")
    job.add_argument("--quiet", action="store_true", help="no progress bar or messages")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m core.batch",
        usage="python -m core.batch ALGORITHM INPUT OUTPUT [options] [--scheduler ADDR] "
              "[--workers N]",
        description="Run a demsr raster algorithm over a large area (a raster, a VRT mosaic,\n"
                    "a folder or list of tiles), chunk by chunk, on a Dask LocalCluster or an\n"
                    "existing Dask cluster, without QGIS. `python -m core.batch ALGORITHM\n"
                    "--help` lists the algorithm's options (the Processing parameters).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="algorithm", metavar="ALGORITHM", required=True,
                             help=", ".join(RASTER_ALGORITHMS))
    for name in RASTER_ALGORITHMS:
        p = sub.add_parser(name, help=f"demsr:{name}", epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter,
                           description=f"demsr:{name} over a large area, chunk by chunk: "
                                       f"{SPECS[name].summary}")
        _common_options(p)
        _algorithm_options(p.add_argument_group(f"{name} parameters"), SPECS[name])
    return top


def _engine(args, monitor: Monitor):
    from .largearea import cluster

    if args.workers == 0 and not args.scheduler:
        return engine.InProcessEngine()
    return cluster.DaskEngine.connect(args.scheduler, args.workers, args.memory_limit, monitor)


def _write_table(path: str, rows: list[tuple]) -> None:
    partial = path + ".partial"
    with open(partial, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["code", "class", "cells", "area_km2", "percent"])
        writer.writerows(rows)
    os.replace(partial, path)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    monitor = ProgressBar(quiet=args.quiet)
    spec = SPECS[args.algorithm]
    engine = None
    try:
        # The rules between parameters, as Processing checks them, before any cluster starts.
        options = spec.validate({p.key: getattr(args, p.key) for p in spec.option_params})
        spread = getattr(args, "output_spread", None)
        outputs.check_paths(args.input, args.output, args.cog, spread)
        engine = _engine(args, monitor)
        result = mosaic.run_job(
            args.algorithm, args.input, args.output, options, engine=engine,
            chunk_size=args.chunk_size, cog=args.cog, keep_chunks=args.keep_chunks,
            overwrite=args.overwrite, monitor=monitor, spread_output=spread)
    except DemError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Cancelled):
        print(f"\ninterrupted; the finished chunks are kept in {manifests.job_folder(args.output)}"
              ": run the same command again to resume.", file=sys.stderr)
        return 130
    finally:
        if engine is not None:
            engine.close()
    rows = result.stats.get("rows")
    if rows:
        for code, name, cells, area, pct in rows:
            monitor.info(f"{code:2d} {name}: {cells} cells, {area:.3f} km², {pct:.2f} %")
        if args.output_table:
            _write_table(args.output_table, rows)
    monitor.info(
        f"{result.output}: {result.info.width} × {result.info.height} cells; "
        f"{result.summary()}; {result.seconds:.1f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
