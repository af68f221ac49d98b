"""``gis imagery add|cog|list|stats|post-freeze``: imagery layers and what they show about parcels."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection, text

from cli.common import console, parse_day
from gis.analysis.blockers import BlockerFilter, find_blockers
from gis.domain.stages import KIND_LABELS_ZH, STAGE_LABELS_ZH, today_in
from gis.domain.tolerance import Tolerance
from gis.io.export import FORMATS, export_filename, stream_csv, write_export
from gis.platform.config import get_settings
from gis.platform.db import connect
from gis.platform.errors import InvalidInput
from gis.records.projects import resolve_project

app = typer.Typer(help="Imagery layers (GeoTIFF/COG): basemaps, per-parcel statistics, change after a freeze.")

CLI_FORMATS = ("table", "json", *FORMATS)
KIND_HELP = "orthophoto, dsm (surface model), hag (height above ground) or classification."
PARCEL_IDS_SQL = "SELECT code, id FROM parcels WHERE code = ANY(:refs) OR CAST(id AS text) = ANY(:refs)"


@app.command("add")
def add(
    file: Annotated[Path, typer.Argument(help="A GeoTIFF (COG preferred) in any CRS.")],
    acquired_on: Annotated[str, typer.Option("--date", help="Acquisition date, YYYY-MM-DD.")],
    kind: Annotated[str, typer.Option(help=KIND_HELP)],
    name: Annotated[str | None, typer.Option(help="A name; the file name by default.")] = None,
    attribution: Annotated[str | None, typer.Option(help="Credit shown on the maps.")] = None,
) -> None:
    """Register a GeoTIFF as an imagery layer (the file stays where it is); prints the layer as JSON."""
    # The imagery modules are imported in each command: rasterio and rio-tiler would otherwise load for
    # every other command too.
    from gis.imagery.layers import register_layer

    day = parse_day(acquired_on, "--date")
    with connect(get_settings()) as conn:
        layer = register_layer(conn, file, acquired_on=day, kind=kind, name=name, attribution=attribution)
    console.print(f"registered imagery layer {layer.id}: {layer.label}, {layer.crs}, {layer.width}×{layer.height} px")
    if not layer.is_cog:
        console.print("[yellow]not a Cloud-Optimized GeoTIFF:[/yellow] `gis imagery cog` makes tiles faster")
    typer.echo(json.dumps(layer.as_dict(), ensure_ascii=False))


@app.command("cog")
def cog(
    src: Annotated[Path, typer.Argument(help="A GeoTIFF (or any raster GDAL reads).")],
    dst: Annotated[Path, typer.Argument(help="The COG to write.")],
    kind: Annotated[str | None, typer.Option(help="classification: overviews keep class codes.")] = None,
) -> None:
    """Convert a raster to a Cloud-Optimized GeoTIFF with overviews."""
    from gis.imagery.layers import to_cog

    out = to_cog(src, dst, kind=kind)
    console.print(f"wrote {out} ({out.stat().st_size:,} bytes)")


@app.command("list")
def list_(
    kind: Annotated[str | None, typer.Option(help=KIND_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """The registered layers."""
    from gis.imagery.layers import KINDS, list_layers

    with connect(get_settings()) as conn:
        layers = list_layers(conn, kind)
    if as_json:
        typer.echo(json.dumps([layer.as_dict() for layer in layers], ensure_ascii=False))
        return
    table = Table(title=f"影像图层 {len(layers)} 个")
    for column in ("id", "类型", "日期", "名称", "CRS", "像素", "分辨率", "COG", "文件"):
        table.add_column(column)
    for layer in layers:
        table.add_row(
            str(layer.id), KINDS[layer.kind], layer.acquired_on.isoformat(), layer.name, layer.crs[:40],
            f"{layer.width}×{layer.height}", f"{layer.resolution[0]:g}", "是" if layer.is_cog else "否", layer.path,
        )
    console.print(table)


def _parcel_ids(conn: Connection, refs: list[str]) -> list[int]:
    found = conn.execute(text(PARCEL_IDS_SQL), {"refs": refs}).all()
    known = {r.code for r in found} | {str(r.id) for r in found}
    missing = [r for r in refs if r not in known]
    if missing:
        raise InvalidInput(f"unknown parcels: {', '.join(missing[:20])}", where="parcels")
    return [r.id for r in found]


@app.command("stats")
def stats(
    layer_id: Annotated[int, typer.Argument(help="The layer id (see `gis imagery list`).")],
    parcels: Annotated[list[str] | None, typer.Argument(help="Parcel codes or ids.")] = None,
    project: Annotated[str | None, typer.Option(help="All blockers of this project (id or code).")] = None,
    threshold: Annotated[float | None, typer.Option(help="Share above this value (hag: 2 m by default).")] = None,
) -> None:
    """Zonal statistics of one layer per parcel (CSV with Chinese headers on stdout)."""
    from gis.imagery.layers import get_layer
    from gis.imagery.stats import EXPORT_COLUMNS as STATS_COLUMNS
    from gis.imagery.stats import default_threshold, parcel_stats

    settings = get_settings()
    with connect(settings) as conn:
        ids = _parcel_ids(conn, parcels) if parcels else []
        if project:
            page = find_blockers(conn, resolve_project(conn, project), BlockerFilter(limit=10_000),
                                 Tolerance.from_settings(settings), tz=settings.city_timezone)
            ids += [item["parcel_id"] for item in page.items]
        if not ids:
            raise InvalidInput("name parcels, or a project whose blockers to take", where="parcels")
        layer = get_layer(conn, layer_id)
        if threshold is None:
            threshold = default_threshold(layer, settings.imagery_height_threshold_m)
        rows = parcel_stats(conn, layer_id, ids, threshold=threshold)
    console.print(f"{layer.label}: {len(rows)} parcels, share above {threshold}")
    for chunk in stream_csv(rows, STATS_COLUMNS, tz=settings.city_timezone):
        sys.stdout.buffer.write(chunk)
    sys.stdout.flush()


@app.command("post-freeze")
def post_freeze(
    project: Annotated[str, typer.Argument(help="Project id or code.")],
    kind: Annotated[str | None, typer.Option(help="hag, dsm or classification; the first with two epochs.")] = None,
    before: Annotated[int | None, typer.Option(help="Layer id of the epoch before the freeze.")] = None,
    after: Annotated[int | None, typer.Option(help="Layer id of the epoch after the freeze.")] = None,
    threshold_m: Annotated[float | None, typer.Option(help="Height gain that counts as change.")] = None,
    min_area_m2: Annotated[float | None, typer.Option(help="Changed area needed to flag a parcel.")] = None,
    min_share: Annotated[float | None, typer.Option(help="Changed share needed to flag a parcel.")] = None,
    output_format: Annotated[str, typer.Option("--format", help=", ".join(CLI_FORMATS) + ".")] = "table",
    output: Annotated[Path | None, typer.Option(help="File to write (xlsx, geojson, gpkg, ...; csv too).")] = None,
    flagged_only: Annotated[bool, typer.Option("--flagged-only", help="Only the flagged parcels.")] = False,
    chips: Annotated[Path | None, typer.Option(help="Write before/after PNG chips of flagged parcels here.")] = None,
) -> None:
    """Parcels of a project's footprint built on or planted after its freeze date, from two imagery epochs."""
    if output_format not in CLI_FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(CLI_FORMATS)}", where="--format")
    from gis.imagery.change import EXPORT_COLUMNS, export_rows, post_freeze_check, post_freeze_chip

    settings = get_settings()
    with connect(settings) as conn:
        project_id = resolve_project(conn, project)
        result = post_freeze_check(
            conn, project_id, settings, kind=kind, before_id=before, after_id=after,
            threshold_m=threshold_m, min_area_m2=min_area_m2, min_share=min_share,
        )
        rows = export_rows(conn, result, flagged_only=flagged_only) if output_format in FORMATS else []
        if chips:
            chips.mkdir(parents=True, exist_ok=True)
            for p in result.flagged:
                for epoch in ("before", "after"):
                    png = post_freeze_chip(conn, project_id, p.parcel_id, epoch,
                                           before_id=result.before.id, after_id=result.after.id)
                    (chips / f"{p.code}_{epoch}.png").write_bytes(png)
    console.print(
        f"{result.project_name}（冻结 {result.freeze_date}）: {result.before.label} → {result.after.label};"
        f" {len(result.parcels)} of {result.parcels_in_footprint} parcels covered, {len(result.flagged)} flagged"
    )
    tz = settings.city_timezone
    if output_format == "json":
        typer.echo(json.dumps(result.as_dict(), ensure_ascii=False))
    elif output_format == "csv" and output is None:
        for chunk in stream_csv(rows, EXPORT_COLUMNS, tz=tz):
            sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
    elif output_format in FORMATS:
        path = output or Path(export_filename("post-freeze", result.project_code, fmt=output_format, on=today_in(tz)))
        write_export(rows, EXPORT_COLUMNS, output_format, path, srid=settings.srid, title="冻结后抢建抢栽核查",
                     layer="post_freeze", tz=tz)
        console.print(f"written {path}")
    else:
        table = Table(title="疑似冻结后抢建抢栽（有变化的地块）")
        for column in ("地块编号", "类型", "阶段", "变化面积(㎡)", "变化占比", "最大增高(m)", "疑似情形"):
            table.add_column(column)
        for p in result.flagged if flagged_only else result.parcels:
            if p.changed_m2 > 0 or p.flagged:
                gain = "" if p.max_gain_m is None else f"{p.max_gain_m:.1f}"
                table.add_row(p.code, KIND_LABELS_ZH.get(p.kind, p.kind), STAGE_LABELS_ZH.get(p.stage, p.stage),
                              f"{p.changed_m2:.1f}", f"{p.changed_share:.1%}", gain, p.suspected_label or "")
        Console(file=sys.stdout, width=max(console.width, 120)).print(table)
