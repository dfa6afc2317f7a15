"""Self-contained HTML accuracy report: statistics table, residual histograms and
observed-vs-predicted scatter plots as inline SVG drawn with numpy alone.

No plotting library: the core must run where only numpy/GDAL exist, and one HTML file with
inline SVG opens anywhere (browser, QGIS's result viewer) without side-car images.
Large samples are drawn as a density (2-D histogram, shaded cells) instead of one mark per
point, so the file stays small for a million points.
"""
from __future__ import annotations

import datetime
import html
import math
import os
import tempfile

import numpy as np

from ..errors import DemError
from ..grid.kernels import KEYS_A
from .accuracy import STATISTICS, Comparison

SCATTER_POINTS_MAX = 4000  # above this the scatter becomes a density plot
_W, _H = 420, 300  # SVG size in px
_M = (48, 16, 20, 40)  # margins left, right, top, bottom


def _fmt(value) -> str:
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.3f}"


def _ticks(lo: float, hi: float, n: int = 5) -> np.ndarray:
    """'Nice' tick values (1, 2, 5 × 10^k steps) covering [lo, hi]."""
    if not hi > lo:
        return np.array([lo])
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((s * mag for s in (1, 2, 5, 10) if s * mag >= raw), default=10 * mag)
    start = math.ceil(lo / step) * step
    return np.arange(start, hi + step * 1e-9, step)


class _Axes:
    """Linear mapping from data to SVG pixels, with the frame and tick labels."""

    def __init__(self, xlim, ylim):
        self.x0, self.x1 = xlim
        self.y0, self.y1 = ylim
        self.left, self.right, self.top, self.bottom = _M[0], _W - _M[1], _M[2], _H - _M[3]

    def px(self, x):
        return self.left + (np.asarray(x) - self.x0) / (self.x1 - self.x0) * (
            self.right - self.left)

    def py(self, y):
        return self.bottom - (np.asarray(y) - self.y0) / (self.y1 - self.y0) * (
            self.bottom - self.top)

    def frame(self, xlabel: str, ylabel: str) -> list[str]:
        parts = [
            f'<rect x="{self.left}" y="{self.top}" width="{self.right - self.left}" '
            f'height="{self.bottom - self.top}" fill="none" stroke="#444"/>'
        ]
        for t in _ticks(self.x0, self.x1):
            x = float(self.px(t))
            parts.append(f'<line x1="{x:.1f}" y1="{self.bottom}" x2="{x:.1f}" '
                         f'y2="{self.bottom + 4}" stroke="#444"/>')
            parts.append(f'<text x="{x:.1f}" y="{self.bottom + 15}" font-size="10" '
                         f'text-anchor="middle">{t:g}</text>')
        for t in _ticks(self.y0, self.y1):
            y = float(self.py(t))
            parts.append(f'<line x1="{self.left - 4}" y1="{y:.1f}" x2="{self.left}" '
                         f'y2="{y:.1f}" stroke="#444"/>')
            parts.append(f'<text x="{self.left - 6}" y="{y + 3:.1f}" font-size="10" '
                         f'text-anchor="end">{t:g}</text>')
        parts.append(f'<text x="{(self.left + self.right) / 2}" y="{_H - 6}" font-size="11" '
                     f'text-anchor="middle">{html.escape(xlabel)}</text>')
        parts.append(f'<text x="12" y="{(self.top + self.bottom) / 2}" font-size="11" '
                     f'text-anchor="middle" transform="rotate(-90 12 '
                     f'{(self.top + self.bottom) / 2})">{html.escape(ylabel)}</text>')
        return parts


def _svg(parts: list[str], title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
            f'viewBox="0 0 {_W} {_H}" role="img"><title>{html.escape(title)}</title>'
            + "".join(parts) + "</svg>")


def histogram_svg(residuals: np.ndarray, title: str, bins: int = 40) -> tuple[str, int]:
    """Histogram of residuals over the central 99 % (symmetric about 0); returns the SVG and
    the number of residuals beyond the drawn range (stated under the plot)."""
    e = residuals[np.isfinite(residuals)]
    half = float(np.percentile(np.abs(e), 99.5)) if e.size else 1.0
    half = half if half > 0 else 1.0
    counts, edges = np.histogram(e, bins=bins, range=(-half, half))
    beyond = int(e.size - counts.sum())
    ax = _Axes((-half, half), (0, max(1, int(counts.max())) * 1.05))
    parts = []
    xs = ax.px(edges)
    ys = ax.py(counts)
    for i, c in enumerate(counts):
        if c:
            parts.append(f'<rect x="{xs[i]:.2f}" y="{ys[i]:.2f}" width="{xs[i + 1] - xs[i]:.2f}" '
                         f'height="{ax.bottom - ys[i]:.2f}" fill="#4c78a8" stroke="#fff" '
                         'stroke-width="0.5"/>')
    x0 = float(ax.px(0.0))
    parts.append(f'<line x1="{x0:.1f}" y1="{ax.top}" x2="{x0:.1f}" y2="{ax.bottom}" '
                 'stroke="#000" stroke-dasharray="3,3"/>')
    if e.size:
        xm = float(ax.px(np.clip(e.mean(), -half, half)))
        parts.append(f'<line x1="{xm:.1f}" y1="{ax.top}" x2="{xm:.1f}" y2="{ax.bottom}" '
                     'stroke="#e45756" stroke-width="1.5"><title>ME</title></line>')
    parts += ax.frame("residual e = DEM − survey", "points")
    return _svg(parts, title), beyond


def scatter_svg(observed: np.ndarray, predicted: np.ndarray, title: str) -> str:
    """Observed (survey) vs predicted (DEM) with the 1:1 line; density cells above
    SCATTER_POINTS_MAX points."""
    ok = np.isfinite(observed) & np.isfinite(predicted)
    o, p = observed[ok], predicted[ok]
    lo = float(min(o.min(), p.min())) if o.size else 0.0
    hi = float(max(o.max(), p.max())) if o.size else 1.0
    pad = 0.03 * (hi - lo) if hi > lo else 1.0
    lo, hi = lo - pad, hi + pad
    ax = _Axes((lo, hi), (lo, hi))
    parts = []
    if o.size <= SCATTER_POINTS_MAX:
        for x, y in zip(ax.px(o), ax.py(p)):
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2" fill="#4c78a8" '
                         'fill-opacity="0.6"/>')
    else:
        nb = 80
        counts, xe, ye = np.histogram2d(o, p, bins=nb, range=((lo, hi), (lo, hi)))
        shade = np.log1p(counts) / np.log1p(counts.max())
        xs, ys = ax.px(xe), ax.py(ye)
        for i, j in zip(*np.nonzero(counts)):
            parts.append(f'<rect x="{xs[i]:.1f}" y="{ys[j + 1]:.1f}" '
                         f'width="{xs[i + 1] - xs[i]:.2f}" '
                         f'height="{ys[j] - ys[j + 1]:.2f}" fill="#4c78a8" '
                         f'fill-opacity="{0.15 + 0.85 * shade[i, j]:.2f}"/>')
    a, b = float(ax.px(lo)), float(ax.px(hi))
    parts.append(f'<line x1="{a:.1f}" y1="{float(ax.py(lo)):.1f}" x2="{b:.1f}" '
                 f'y2="{float(ax.py(hi)):.1f}" stroke="#e45756"><title>1:1</title></line>')
    parts += ax.frame("observed (survey)", "predicted (DEM)")
    return _svg(parts, title)


def render_html(names: list[str], comparisons: list[Comparison], observed: np.ndarray,
                method: str, title: str = "DEM accuracy against survey points") -> str:
    """The whole report as one HTML string."""
    if len(names) != len(comparisons) or not names:
        raise DemError("The report needs one name per compared DEM.")
    esc = html.escape
    head = "".join(f"<th>{esc(st.label)}</th>" for st in STATISTICS)
    rows = []
    for name, comp in zip(names, comparisons):
        d = comp.stats.as_dict()
        rows.append(f"<tr><td>{esc(name)}</td>"
                    + "".join(f"<td>{_fmt(d[st.attribute])}</td>" for st in STATISTICS)
                    + "</tr>")
    sampling = {"nearest": "nearest cell",
                "bilinear": "bilinear (2 × 2 cell centres)",
                "bicubic": f"bicubic (Keys cubic convolution, a = {KEYS_A}, 4 × 4 cells)"}[method]
    plots = []
    for name, comp in zip(names, comparisons):
        used = np.isfinite(comp.residuals)
        hist, beyond = histogram_svg(comp.residuals[used], f"residuals of {name}")
        survey = observed if comp.observed is None else comp.observed  # in the DEM's reference
        scatter = scatter_svg(survey[used], comp.predicted[used], f"{name} vs survey")
        note = (f"<p class='note'>{beyond} residual(s) beyond the drawn range.</p>"
                if beyond else "")
        density = (f"<p class='note'>{int(used.sum())} points drawn as a density "
                   "(darker = more points).</p>" if used.sum() > SCATTER_POINTS_MAX else "")
        plots.append(f"<h3>{esc(name)}</h3><div class='plots'><figure>{hist}"
                     f"<figcaption>Residual histogram (dashed: 0, red: ME)</figcaption>{note}"
                     f"</figure><figure>{scatter}<figcaption>Observed vs predicted (red: 1:1)"
                     f"</figcaption>{density}</figure></div>")
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; }}
th, td {{ border: 1px solid #bbb; padding: 3px 6px; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
th {{ background: #eee; }}
.plots {{ display: flex; flex-wrap: wrap; gap: 1em; }}
figure {{ margin: 0; }} figcaption, .note {{ font-size: 12px; color: #555; }}
</style></head><body>
<h1>{esc(title)}</h1>
<p>Residual e = DEM − survey (positive: the DEM is too high). Sampling: {esc(sampling)},
cell-centre convention; a point is used only if its whole stencil holds valid cells.
Generated {stamp}.</p>
<table><tr><th>DEM</th>{head}</tr>
{''.join(rows)}
</table>
<p class="note">ME mean error (bias); MAE mean |e|; RMSE root mean square; SD sample standard
deviation (n − 1); NMAD = 1.4826·median(|e − median(e)|); LE90/LE95 90th/95th percentile of |e|
(linear interpolation between order statistics); NSSDA 95 % = 1.9600·RMSE. Skipped: outside the
raster, edge (stencil crosses the border), nodata in the stencil, no survey elevation, no position.
</p>
{_vertical_table(names, comparisons)}
<h2>Plots</h2>
{''.join(plots)}
</body></html>
"""


def _vertical_table(names, comparisons) -> str:
    """Both vertical references per DEM and the height correction applied (metres)."""
    esc = html.escape
    rows, notes = [], []
    for name, comp in zip(names, comparisons):
        link = comp.vertical
        if link is None:
            continue
        change = ("".join(f"<td>{link_value:+.3f}</td>"
                          for link_value in (link.mean, link.min, link.max))
                  if link.transformed else "<td colspan='3'>none</td>")
        rows.append(f"<tr><td>{esc(name)}</td><td>{esc(link.dem)}</td>"
                    f"<td>{esc(link.points)}</td>{change}</tr>")
        if link.note:
            notes.append(f"<p class='note'>{esc(link.note)}</p>")
    if not rows:
        return ""
    return ("<h2>Vertical references</h2><p>The survey heights are transformed by PROJ into "
            "each DEM's vertical reference before the residuals are computed (correction = "
            "transformed − original survey height).</p><table><tr><th>DEM</th>"
            "<th>DEM heights</th><th>survey heights</th><th>correction mean (m)</th>"
            "<th>min (m)</th><th>max (m)</th></tr>" + "".join(rows) + "</table>"
            + "".join(notes))


def write_html(path: str, names, comparisons, observed, method: str) -> None:
    text = render_html(list(names), list(comparisons), np.asarray(observed, float), method)
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as err:
        raise DemError(f"Cannot write the report '{path}': {err}") from err


def check_writable(path: str, what: str = "the report") -> None:
    """DemError unless a file can be written at `path`: callers check before the work starts,
    so a bad destination fails in a second rather than after the sampling."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        reason = f"the folder '{folder}' does not exist"
    elif os.path.isdir(path):
        reason = "that is a folder"
    elif os.path.exists(path) and not os.access(path, os.W_OK):
        reason = "the file is read-only"
    else:
        try:  # the only sure test that the folder takes a new file (permissions, read-only disk)
            with tempfile.TemporaryFile(dir=folder):
                reason = ""
        except OSError as err:
            reason = f"no file can be created in '{folder}' ({err.strerror})"
    if reason:
        raise DemError(f"Cannot write {what} to '{path}': {reason}.")
