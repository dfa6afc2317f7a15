"""The small types an algorithm declares its interface with, once, without QGIS.

Each algorithm has one AlgorithmSpec (core/declarations/): its parameters (public id, kind,
default, allowed range or choices, the label the dialog shows, a one-line help, advanced or not),
its outputs, and for the raster algorithms its chunk kernel for large areas. Everything else is
built from it: the Processing parameters, dialog help and checks (algorithms/declared.py), the
command line's options, --help and checks (core.batch), the large-area engine's defaults and
kernels (core.largearea.mosaic) and the parameter tables of the documentation
(scripts/docs_tables.py).

A refusal is a DemError whose message starts with the parameter's id and says what is allowed:
"SCALE: 2.5 is not a whole number; allowed: a whole number ≥ 2." Both front doors show it as is.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import DemError

# Parameter kinds. The first five are the values an algorithm's options take (the command line's
# options, the job manifest's parameters); the others are layers and fields only Processing has.
INTEGER = "integer"
NUMBER = "number"
BOOLEAN = "boolean"
ENUM = "enum"
FILE = "file"  # an existing file, e.g. a model
STRING = "string"
RASTER = "raster"  # an input raster layer
RASTERS = "rasters"  # one or more input raster layers
POINTS = "points"  # a point vector layer
FIELD = "field"  # a numeric field of another parameter's layer

# Output kinds.
RASTER_OUT = "raster"
TABLE_OUT = "table"  # a table without geometry (a CSV from the command line)
POINTS_OUT = "points"
HTML_OUT = "html"
NUMBER_OUT = "number"  # a value returned to models
STRING_OUT = "string"

_VALUE_KINDS = (INTEGER, NUMBER, BOOLEAN, ENUM, FILE, STRING)


@dataclass(frozen=True)
class Choice:
    """One option of an enumeration: its stable short name (what core functions, the command
    line and job manifests use) and the words the dialog shows. Its number is its position."""

    name: str
    label: str = ""
    aliases: tuple[str, ...] = ()  # further spellings the command line accepts

    @property
    def shown(self) -> str:
        return self.label or self.name


class _Named:
    """What a parameter's or an output's public id (`name`) gives the command line."""

    name: str

    @property
    def key(self) -> str:
        """The name in core calls, job manifests and on the command line (--key)."""
        return self.name.lower()

    @property
    def flags(self) -> list[str]:
        """Command-line spellings: --small-radius, and --small_radius where that differs."""
        dashed = "--" + self.key.replace("_", "-")
        return [dashed] if "_" not in self.key else [dashed, "--" + self.key]


@dataclass(frozen=True)
class Param(_Named):
    """One parameter, declared once.

    `choices` is a tuple of Choice, or for options known only at run time (the bundled models)
    a function returning (choices, default name). `option=False`: a layer, field or setting only
    Processing takes (INPUT, ENGINE); the command line and the engine do not see it."""

    name: str  # the public id: INPUT, RADIUS, ...
    kind: str
    label: str  # what the dialog shows, at most 60 characters
    help: str  # one line for a geoscientist
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    above_minimum: bool = False  # the minimum itself is refused (a radius must be > 0)
    choices: tuple[Choice, ...] | Callable[[], tuple[tuple[Choice, ...], str | None]] = ()
    decimals: int | None = None  # how the dialog shows a number
    advanced: bool = False
    optional: bool = False
    option: bool = True
    extension: str = ""  # FILE: the file type
    parent: str = ""  # FIELD: the layer parameter it belongs to
    default_text: str = ""  # the default in words, where the value alone says too little

    def options(self) -> tuple[tuple[Choice, ...], Any]:
        """(choices, default): resolved now for choices known only at run time."""
        if callable(self.choices):
            choices, default = self.choices()
            return tuple(choices), default if self.default is None else self.default
        return self.choices, self.default

    def default_value(self):
        """The default a user sees (the bundled default model by name, not None)."""
        return self.options()[1] if self.kind == ENUM else self.default

    # --- words -------------------------------------------------------------------------------

    def show(self, value) -> str:
        """A value as the help prints it: 2, 5.0, yes, quadrant."""
        if value is None or value == "":
            return "none"
        if isinstance(value, bool):
            return "yes" if value else "no"
        if self.kind == NUMBER:
            return f"{float(value):.{self.decimals}f}" if self.decimals is not None \
                else f"{float(value):g}"
        return str(value)

    def allowed(self) -> str:
        """The allowed values in words (empty when any value of the kind goes)."""
        if self.kind == ENUM:
            choices, _ = self.options()
            return _either([c.name for c in choices])
        if self.kind not in (INTEGER, NUMBER):
            return ""
        what = "a whole number" if self.kind == INTEGER else "a number"
        low, high = self.minimum, self.maximum
        if low is not None and high is not None:
            return f"{what} from {low:g} to {high:g}"
        if low is not None:
            return f"{what} {'>' if self.above_minimum else '≥'} {low:g}"
        if high is not None:
            return f"{what} ≤ {high:g}"
        return what

    def describe(self) -> str:
        """The one line both front doors print for this parameter: label, help, default and
        allowed values."""
        if self.kind not in _VALUE_KINDS:  # a layer or field: nothing to default or bound
            tail = f"Default {self.default_text}." if self.default_text else ""
            return f"{self.label}: {self.help} {tail}".rstrip()
        default = self.default_text or self.show(self.default_value())
        allowed = self.allowed()
        tail = f"Default {default}" + (f"; {allowed}" if allowed else "") + "."
        return f"{self.label}: {self.help} {tail}"

    # --- checks ------------------------------------------------------------------------------

    def refuse(self, value, why: str):
        allowed = self.allowed()
        # Numbers as typed, whichever door they came through (2.5, not '2.5').
        shown = str(value).strip() if self.kind in (INTEGER, NUMBER) else f"'{value}'"
        return DemError(f"{self.name}: {shown} {why}" + (f"; allowed: {allowed}." if allowed
                                                         else "."))

    def validate(self, value, by_name: bool = True):
        """The value in its canonical form (int, float, bool, an option's name), or a DemError
        naming the parameter and its allowed values. `by_name`: an option may be given by name
        as well as by number (the command line); Processing takes numbers only."""
        if value is None:
            return self.default
        if isinstance(value, str) and value == "" and self.kind == FILE:
            return None  # no file given
        if self.kind == BOOLEAN:
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered in ("true", "yes", "1"):
                    return True
                if lowered in ("false", "no", "0"):
                    return False
                raise self.refuse(value, "is not true or false")
            return bool(value)
        if self.kind == ENUM:
            return self._choice(value, by_name)
        if self.kind in (INTEGER, NUMBER):
            return self._number(value)
        return str(value) if self.kind in (FILE, STRING) else value

    def _choice(self, value, by_name: bool) -> str:
        choices, _ = self.options()
        text = str(value).strip()
        if isinstance(value, int) and not isinstance(value, bool):
            text = str(value)
        if text.isdigit() and int(text) < len(choices):
            return choices[int(text)].name
        if by_name:
            lowered = text.lower()
            for c in choices:
                if lowered == c.name or lowered in c.aliases:
                    return c.name
        numbered = [f"{i} ({c.shown})" for i, c in enumerate(choices)]
        how = "the option's number or name" if by_name else "the option's number"
        raise DemError(f"{self.name}: '{value}' is not an accepted value; use {how}: "
                       f"{_either(numbered)}.")

    def _number(self, value):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise self.refuse(value, "is not a number") from None
        if not math.isfinite(number):
            raise self.refuse(value, "is not a finite number")
        if self.kind == INTEGER:
            if not number.is_integer():
                raise self.refuse(value, "is not a whole number")
            number = int(number)
        if (self.minimum is not None and (number < self.minimum or (
                self.above_minimum and number == self.minimum))) or \
                (self.maximum is not None and number > self.maximum):
            raise self.refuse(value, "is out of range")
        return number


@dataclass(frozen=True)
class Output(_Named):
    """One output. `option`: the command line takes it as --key PATH (the main OUTPUT is its
    positional argument instead)."""

    name: str
    kind: str
    label: str
    help: str
    optional: bool = False
    create_by_default: bool = True
    option: bool = False

    def describe(self) -> str:
        return f"{self.label}: {self.help}" + (" Optional." if self.optional else "")


@dataclass(frozen=True)
class AlgorithmSpec:
    """An algorithm's interface, declared once.

    `rules(values)` checks what involves several parameters (a DemError naming them);
    `kernel(values, info, chunk_size, monitor, extras)` builds the chunk kernel for large areas
    (core.largearea.chunks.Kernel: halo, global statistics, how a chunk is computed) with every
    check the in-process path makes, and returns (kernel, model blob or None); `extras` maps the
    further rasters the kernel can yield beside its result (e.g. "spread") to their output."""

    id: str
    summary: str  # one line
    about: str  # prose for the dialog help, paragraphs separated by blank lines
    params: tuple[Param, ...]
    outputs: tuple[Output, ...]
    rules: Callable[[dict], None] | None = None
    kernel: Callable | None = None
    extras: dict[str, str] = field(default_factory=dict)  # kernel extra → output name
    notes: str = ""  # a closing paragraph (references)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name or p.key == name:
                return p
        raise KeyError(name)

    @property
    def option_params(self) -> tuple[Param, ...]:
        """The parameters the command line and the large-area engine take."""
        return tuple(p for p in self.params if p.option and p.kind in _VALUE_KINDS)

    def defaults(self) -> dict:
        """{key: default} of the options: what a job records for an option not given."""
        return {p.key: p.default for p in self.option_params}

    def validate(self, values: dict | None, by_name: bool = True) -> dict:
        """Every option present, checked and in canonical form (defaults for the missing), then
        the rules between parameters; a DemError naming the parameter otherwise."""
        params = {p.key: p for p in self.option_params}
        given = {}
        for key, value in (values or {}).items():
            name = str(key).lower().replace("-", "_")
            if name not in params:
                raise DemError(f"{self.id} has no parameter '{key}'; it takes "
                               f"{', '.join(p.name for p in self.option_params)}.")
            given[name] = value
        checked = {}
        for key, p in params.items():
            checked[key] = p.validate(given[key], by_name) if key in given else p.default
        if self.rules is not None:
            self.rules(checked)
        return checked

    def help_text(self) -> str:
        """The dialog's help, generated: the prose, one line per parameter (its label as shown,
        what it does, default and allowed values), the outputs, one line for qgis_process
        users with the parameter ids and option numbers, and the references."""
        lines = [self.about.strip(), "", "Parameters:"]
        lines += [p.describe() for p in self.params]
        lines += ["", "Outputs:"] + [o.describe() for o in self.outputs]
        lines += ["", self.command_line()]
        if self.notes:
            lines += ["", self.notes.strip()]
        return "\n".join(lines)

    def command_line(self) -> str:
        """'From qgis_process: INPUT, SHAPE (0 square, 1 circle, 2 annulus), …'."""
        named = []
        for p in self.params:
            if p.kind == ENUM:
                choices, _ = p.options()
                numbered = ", ".join(f"{i} {c.name}" for i, c in enumerate(choices))
                named.append(f"{p.name} ({numbered})")
            else:
                named.append(p.name)
        named += [o.name for o in self.outputs]
        return "From qgis_process: " + ", ".join(named) + "."


def _either(items: list[str]) -> str:
    items = list(items)
    if len(items) < 2:
        return "".join(items)
    return ", ".join(items[:-1]) + f" or {items[-1]}"


def check_less(values: dict, small: str, large: str) -> None:
    """A rule: values[small] < values[large] (e.g. SMALL_RADIUS < LARGE_RADIUS)."""
    if not values[small] < values[large]:
        raise DemError(f"{small.upper()} ({values[small]:g}) must be smaller than "
                       f"{large.upper()} ({values[large]:g}).")
