"""``gis check NAME [--days N ...]``: the inspection checks at the command line, one command each.

Each command's options are its check's parameters (from the parameter dataclass: defaults, help),
plus ``--as-of``, ``--format table|csv|json|xlsx|geojson|gpkg|...`` and ``--output``. Tables, CSV and
JSON go to stdout; the rule and its parameters to stderr; files other than CSV/JSON to ``--output``
(default: a dated file name in the current folder).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import sys
import typing
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cli.common import console, parse_day
from gis.checks import CHECKS, NUMBER_FORMATS, Check, CheckParams, CheckResult, format_value
from gis.domain.stages import today_in
from gis.io.export import FORMATS, export_filename, stream_csv, write_export
from gis.platform.config import get_settings
from gis.platform.db import connect
from gis.platform.errors import InvalidInput

app = typer.Typer(help="Inspection checks (纪检监察): " + ", ".join(c.title for c in CHECKS.values()) + ".",
                  no_args_is_help=True)
CLI_FORMATS = ("table", "json", *FORMATS)


def print_table(result: CheckResult, out: Console) -> None:
    """A check's findings as a table, numbers right-aligned."""
    table = Table(title=f"{result.title} {result.as_of}：{result.count} 宗")
    for col in result.columns:
        table.add_column(col.label, justify="right" if col.type in NUMBER_FORMATS else "left")
    for f in result.findings:
        table.add_row(*(format_value(c, f.get(c.key)) for c in result.columns))
    out.print(table)


def run(check: Check, params: CheckParams, as_of: str | None, fmt: str, output: Path | None,
        reveal_personal: bool) -> None:
    """Run a check as of a day (default today in the city's time zone) and write the findings as a table, JSON, CSV
    on stdout, or a file in any export format."""
    if fmt not in CLI_FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(CLI_FORMATS)}", "--format")
    settings = get_settings()
    tz = settings.city_timezone
    day = parse_day(as_of, "--as-of") if as_of else today_in(tz)
    with connect(settings) as conn:
        result = check.run(conn, params, as_of=day, tz=tz, reveal_personal=reveal_personal,
                           with_geometry=fmt == "geojson" or bool(FORMATS.get(fmt) and FORMATS[fmt].driver))
    console.print(f"{result.title}：{result.rule}（{params.stated_zh()}）：{result.count} 宗")
    if fmt == "table":
        print_table(result, Console(file=sys.stdout, width=max(console.width, 160)))
    elif fmt == "json":
        json.dump(result.as_dict(), sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
    elif fmt == "csv" and output is None:
        for chunk in stream_csv(result.export_rows(), result.columns, reveal_personal=reveal_personal, tz=tz):
            sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
    else:
        path = output or Path(export_filename(f"check_{check.name}", fmt=fmt, on=result.as_of))
        write_export(result.export_rows(), result.columns, fmt, path, srid=settings.srid,
                     reveal_personal=reveal_personal, title=check.title, layer=check.name, tz=tz,
                     geometry_type=result.geometry_type)
        console.print(f"written {path}")


def _command(check: Check) -> Any:
    """A command whose options are the check's parameters, then the common ones."""
    hints = typing.get_type_hints(check.params)
    fields = dataclasses.fields(check.params)

    def command(**values: Any) -> None:
        common = {k: values.pop(k) for k in ("as_of", "format", "output", "reveal_personal")}
        run(check, check.params(**values).validated(), common["as_of"], common["format"], common["output"],
            common["reveal_personal"])

    options = [
        inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default,
                          annotation=Annotated[hints[f.name], typer.Option(help=f"{f.metadata['label']}: "
                                                                                f"{f.metadata['help']}")])
        for f in fields
    ] + [
        inspect.Parameter("as_of", inspect.Parameter.KEYWORD_ONLY, default=None,
                          annotation=Annotated[str | None, typer.Option(help="As of the end of this day, "
                                                                             "YYYY-MM-DD; default today.")]),
        inspect.Parameter("format", inspect.Parameter.KEYWORD_ONLY, default="table",
                          annotation=Annotated[str, typer.Option(help=", ".join(CLI_FORMATS) + ".")]),
        inspect.Parameter("output", inspect.Parameter.KEYWORD_ONLY, default=None,
                          annotation=Annotated[Path | None, typer.Option(help="File to write (xlsx, geojson, "
                                                                              "gpkg, ...; csv too).")]),
        inspect.Parameter("reveal_personal", inspect.Parameter.KEYWORD_ONLY, default=False,
                          annotation=Annotated[bool, typer.Option(help="Show owner names unmasked.")]),
    ]
    command.__signature__ = inspect.Signature(options)
    command.__annotations__ = {p.name: p.annotation for p in options}
    command.__doc__ = check.run.__doc__
    return command


for _check in CHECKS.values():
    app.command(_check.slug)(_command(_check))
