"""``gis export parcels``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import text

from cli.common import console, progress_bar
from gis.domain.stages import today_in
from gis.io import crs as crs_mod
from gis.io.export import (
    FORMATS,
    PARCEL_COLUMNS,
    check_format,
    export_filename,
    parcel_query,
    query_rows,
    stream_export,
    write_export,
)
from gis.platform.config import get_settings
from gis.platform.db import get_app_engine, working_srid

app = typer.Typer(help="Parcel lists as CSV, XLSX, GeoJSON, GeoPackage, Shapefile, FlatGeobuf or KML.",
                  no_args_is_help=True)


@app.command("parcels")
def export_parcels(
    format: Annotated[str, typer.Option("--format", "-f", help=", ".join(FORMATS))] = "xlsx",
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="File to write ('-' = stdout, CSV and GeoJSON); default parcels_…_<date>.<ext>")] = None,
    district: Annotated[list[str] | None, typer.Option(help="District code or name (repeat).")] = None,
    stage: Annotated[list[str] | None, typer.Option(help="Stage (repeat).")] = None,
    kind: Annotated[str | None, typer.Option(help="house or land.")] = None,
    holdout: Annotated[bool | None, typer.Option("--holdout/--no-holdout", help="Only holdouts / none.")] = None,
    crs: Annotated[int | None, typer.Option(help="EPSG code for gpkg/shp/fgb (default the working CRS).")] = None,
    reveal_personal: Annotated[bool, typer.Option("--reveal-personal", help="Owner names, ID numbers and phones "
                                                                             "unmasked.")] = False,
) -> None:
    """Export parcels (filtered), streamed in batches from the database."""
    settings = get_settings()
    check_format(format)
    engine = get_app_engine(settings)
    with engine.connect() as conn:
        srid = working_srid(conn)
        if crs is not None:
            crs_mod.check(crs, srid)
        statement, params = parcel_query(districts=district or (), stages=stage or (), kind=kind, holdout=holdout)
        total = conn.execute(text(f"SELECT count(*) FROM ({statement.text}) q"), params).scalar_one()
    rows = query_rows(engine, statement, params)
    if output is not None and str(output) == "-":
        if not FORMATS[format].streams:
            raise typer.BadParameter("only csv and geojson can go to stdout", param_hint="--output")
        chunks = stream_export(rows, PARCEL_COLUMNS, format, srid=srid, reveal_personal=reveal_personal,
                               tz=settings.city_timezone)
        for chunk in chunks:
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        return
    path = output or Path(export_filename("parcels", *(district or []), fmt=format,
                                          on=today_in(settings.city_timezone)))
    with progress_bar() as bar:
        task = bar.add_task(f"writing {path.name}", total=total)
        count = write_export(rows, PARCEL_COLUMNS, format, path, srid=srid, crs=crs, reveal_personal=reveal_personal,
                             tz=settings.city_timezone, progress=lambda n: bar.advance(task, n))
    console.print(f"{count} parcels → {path}")
