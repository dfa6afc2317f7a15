"""Does a candidate model beat the bundled one? Two ``training.evaluate --manifest`` results
side by side, and the keep rule of training/CORPUS.md applied to them.

    python -m training.compare bundled.json candidate.json [--method fastsr] [--markdown out.md]

Keep rule: the candidate's mean RMSE over each product's held-out files is lower than the
bundled model's for every product both results score, at every scale. Slope RMSE is reported
beside it, not ruled on.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def product_means(result: dict, method: str) -> dict[tuple[str, str], dict]:
    """(product, scale) -> the method's mean scores over that product's held-out files."""
    out = {}
    for product, block in result["per_product"].items():
        for scale_key, methods in block["summary"].items():
            if method in methods:
                out[(product, scale_key)] = methods[method]
    return out


def compare(bundled: dict, candidate: dict, method: str = "fastsr") -> dict:
    """Per (product, scale): both RMSEs and slope RMSEs, and whether the candidate is kept."""
    before, after = product_means(bundled, method), product_means(candidate, method)
    shared = sorted(set(before) & set(after))
    if not shared:
        raise ValueError(f"the two results share no product and scale scored for {method!r}")
    rows = [{"product": p, "scale": s,
             "rmse_bundled": before[(p, s)]["rmse"], "rmse_candidate": after[(p, s)]["rmse"],
             "slope_bundled": before[(p, s)]["slope_rmse_deg"],
             "slope_candidate": after[(p, s)]["slope_rmse_deg"]} for p, s in shared]
    return {"method": method, "rows": rows,
            "keep": all(r["rmse_candidate"] < r["rmse_bundled"] for r in rows)}


def markdown(comparison: dict) -> str:
    lines = ["| product | scale | RMSE bundled m | RMSE candidate m | change | slope bundled ° "
             "| slope candidate ° | change |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in comparison["rows"]:
        d_rmse = r["rmse_candidate"] / r["rmse_bundled"] - 1
        d_slope = r["slope_candidate"] / r["slope_bundled"] - 1
        lines.append(f"| {r['product']} | {r['scale']} | {r['rmse_bundled']:.3f} | "
                     f"{r['rmse_candidate']:.3f} | {100 * d_rmse:+.1f} % | "
                     f"{r['slope_bundled']:.3f} | {r['slope_candidate']:.3f} | "
                     f"{100 * d_slope:+.1f} % |")
    verdict = ("keep the candidate: lower mean RMSE for every product at every scale"
               if comparison["keep"] else
               "keep the bundled model: the candidate is not lower for every product and scale")
    return "\n".join(lines) + f"\n\nVerdict: {verdict}.\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="Apply the keep rule to two evaluate results.")
    p.add_argument("bundled", type=Path)
    p.add_argument("candidate", type=Path)
    p.add_argument("--method", default="fastsr")
    p.add_argument("--markdown", type=Path, default=None)
    args = p.parse_args(argv)
    comparison = compare(json.loads(args.bundled.read_text()),
                         json.loads(args.candidate.read_text()), args.method)
    text = markdown(comparison)
    print(text)
    if args.markdown is not None:
        args.markdown.write_text(text)


if __name__ == "__main__":
    main()
