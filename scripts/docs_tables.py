"""The parameter tables of docs/DESIGN.md and docs/algorithms.md, generated from the algorithms'
declarations (core/declarations/).

    .venv/bin/python scripts/docs_tables.py          # rewrite the tables in place
    .venv/bin/python scripts/docs_tables.py --check  # exit 1 when a table is out of date

Each table sits between two marker comments, `<!-- parameters: ID -->` (or
`<!-- parameters: contract -->` for DESIGN.md's overview) and `<!-- /parameters -->`;
tests/core/test_declarations.py fails when one differs from what this script writes.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core import params  # noqa: E402
from core.declarations import SPECS  # noqa: E402

DOCS = (ROOT / "docs" / "DESIGN.md", ROOT / "docs" / "algorithms.md")
_BLOCK = re.compile(r"(<!-- parameters: (?P<id>[\w]+) -->\n)(?P<body>.*?)(<!-- /parameters -->)",
                    re.S)


def _mandatory(param: params.Param) -> bool:
    return not param.optional and param.kind not in params._VALUE_KINDS


def _in_overview(param: params.Param) -> str:
    name = f"`{param.name}`"
    if param.kind == params.ENUM:
        choices, _ = param.options()
        return f"{name} ({', '.join(f'{i} {c.name}' for i, c in enumerate(choices))})"
    if param.kind in (params.INTEGER, params.NUMBER, params.BOOLEAN):
        return f"{name} ({param.show(param.default)})"
    return f"**{name}**" if _mandatory(param) else name


def overview() -> str:
    """DESIGN.md's table: every algorithm's parameters (mandatory ones in bold) and outputs."""
    rows = ["| algorithm | parameters (mandatory in bold; defaults and option numbers) | "
            "outputs |", "| --- | --- | --- |"]
    for spec in SPECS.values():
        shown = [_in_overview(p) for p in spec.params]
        shown += [f"**`{o.name}`**" if not o.optional else f"`{o.name}`"
                  for o in spec.outputs if o.kind not in (params.NUMBER_OUT, params.STRING_OUT)]
        outputs = ", ".join(f"`{o.name}`" for o in spec.outputs)
        rows.append(f"| `demsr:{spec.id}` | {', '.join(shown)} | {outputs} |")
    return "\n".join(rows) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def parameters(spec: params.AlgorithmSpec) -> str:
    """algorithms.md's table for one algorithm: the dialog's label, the qgis_process id, the
    command line's option, the default and the allowed values of every parameter."""
    batch = spec.kernel is not None
    head = "| in the dialog | qgis_process | "
    head += "`python -m core.batch` | " if batch else ""
    rows = [head + "default | allowed |", "| --- | --- | " + ("--- | " if batch else "")
            + "--- | --- |"]
    for p in spec.params:
        value = p.kind in params._VALUE_KINDS
        if p.kind == params.ENUM:
            choices, _ = p.options()
            allowed = ", ".join(f"{i} {c.name}" for i, c in enumerate(choices))
        else:
            allowed = p.allowed() or ("optional" if p.optional else "")
        default = (p.default_text or p.show(p.default_value())) if value else (
            p.default_text or ("mandatory" if _mandatory(p) else ""))
        flag = f"`{p.flags[0]}`" if p.option and value else "–"
        if p.name == "INPUT":
            flag = "INPUT"  # the positional argument
        elif p.name == "ENGINE":
            flag = "`--scheduler`, `--workers`"
        if not batch:
            flag = None
        cells = [p.label, f"`{p.name}`"] + ([flag] if flag is not None else []) \
            + [default, allowed]
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    for o in spec.outputs:
        if o.kind in (params.NUMBER_OUT, params.STRING_OUT):
            continue
        flag = (f"`{o.flags[0]}`" if o.option else "OUTPUT" if o.name == "OUTPUT" else "–")
        cells = [o.label, f"`{o.name}`"] + ([flag] if batch else []) \
            + ["optional" if o.optional else "mandatory", "a file"]
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(rows) + "\n"


def table(block_id: str) -> str:
    return overview() if block_id == "contract" else parameters(SPECS[block_id])


def rewrite(text: str) -> str:
    return _BLOCK.sub(lambda m: m.group(1) + table(m.group("id")) + m.group(4), text)


def main(argv: list[str]) -> int:
    stale = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        new = rewrite(text)
        if new != text:
            stale.append(path)
            if "--check" not in argv:
                path.write_text(new, encoding="utf-8")
    if stale and "--check" in argv:
        print("out of date: " + ", ".join(str(p.relative_to(ROOT)) for p in stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
