"""OGC API - Features (Core, GeoJSON, HTML, OpenAPI 3.0; Part 2 CRS; Part 3 Filtering) and OGC API - Tiles
under /ogc, for QGIS, ArcGIS and GDAL (``OAPIF:http://host/ogc``).

Query parameters are read by hand rather than declared: the items path takes each collection's
queryables as equality filters, and the standard wants 400 (not FastAPI's 422) for a parameter
that is unknown or malformed. Same roles as the rest of the API: viewers read, owner fields masked
unless the token may see personal data (and then only those tokens may filter on them).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Connection

from api import ogc_docs as docs
from api.auth import Principal, Role, require
from api.deps import Conn, Database, get_database, get_settings
from api.pages import page_header
from api.routers.tiles import cached_tile
from gis.maps.tiles import MAX_ZOOM, TILE_LAYERS
from gis.ogc import collections as ogc
from gis.ogc import cql2 as cql2_sql
from gis.ogc.cql2 import BadRequest
from gis.platform.config import Settings
from gis.platform.errors import InvalidInput, NotFound

router = APIRouter(prefix="/ogc", tags=["OGC API"])

Reader = Annotated[Principal, Depends(require(Role.viewer))]
Config = Annotated[Settings, Depends(get_settings)]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + router.prefix


def _wants_html(request: Request) -> bool:
    f = request.query_params.get("f")
    if f is not None:
        if f.lower() == "html":
            return True
        if f.lower() in ("json", "geojson", "application/json", "application/geo+json"):
            return False
        raise BadRequest("f must be json or html", "f")
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "json" not in accept


def _only(request: Request, allowed: set[str]) -> None:
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise BadRequest(f"unknown query parameter {unknown[0]!r}; this resource takes {', '.join(sorted(allowed))}",
                         unknown[0])


def _json(doc: Any, media_type: str = docs.MT_JSON, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(doc), media_type=media_type, headers=headers)


def _answer(request: Request, doc: dict, title: str, body: str = "", media_type: str = docs.MT_JSON,
            headers: dict[str, str] | None = None) -> Response:
    if _wants_html(request):
        return HTMLResponse(docs.html_page(title, doc, body, page_header(request)), headers=headers)
    return _json(doc, media_type, headers)


@router.get("")
def landing(request: Request, _principal: Reader) -> Response:
    """Landing page: links to the API definition, the conformance classes and the collections."""
    _only(request, {"f"})
    return _answer(request, docs.landing(_base(request)), "征收征迁 · OGC API")


@router.get("/conformance")
def conformance(request: Request, _principal: Reader) -> Response:
    """The conformance classes implemented: Features (Core, GeoJSON, HTML, OpenAPI 3.0, CRS, CQL2 filtering) and
    Tiles. Any signed-in user."""
    _only(request, {"f"})
    doc = {"conformsTo": docs.CONFORMANCE}
    return _answer(request, doc, "Conformance", "<ul>" + "".join(f"<li>{c}</li>" for c in docs.CONFORMANCE) + "</ul>")


@router.get("/api")
def api_definition(request: Request, principal: Reader, conn: Conn, settings: Config) -> Response:
    """OpenAPI 3.0, one items path per collection with its queryables as query parameters."""
    _only(request, {"f"})
    collections = [(c, c.queryables(principal.reveal_personal)) for c in ogc.list_collections(conn, settings)]
    doc = docs.openapi_doc(_base(request), collections)
    if _wants_html(request):
        rows = [[path, op["get"]["summary"], ", ".join(p.get("name") or p["$ref"].rsplit("/", 1)[-1]
                                                    for p in op["get"]["parameters"])]
                for path, op in doc["paths"].items()]
        page = {"description": doc["info"]["description"],
                "links": [docs.link(_base(request) + "/api", "service-desc", docs.MT_OPENAPI, "OpenAPI 3.0 (JSON)")]}
        table = docs.html_table(["path", "", "parameters"], rows)
        return HTMLResponse(docs.html_page(doc["info"]["title"], page, table, page_header(request)))
    return _json(doc, docs.MT_OPENAPI)


@router.get("/collections")
def collections(request: Request, _principal: Reader, conn: Conn, settings: Config) -> Response:
    """Every collection with its extent and CRSs: parcels, projects, districts and the blockers of each project not
    archived. Any signed-in user."""
    _only(request, {"f"})
    base = _base(request)
    items = [docs.collection_doc(c, base, ogc.collection_extent(conn, c, settings.srid), settings.srid)
             for c in ogc.list_collections(conn, settings)]
    doc = {"links": [docs.link(base + "/collections", "self", docs.MT_JSON, "collections"),
                     docs.link(base + "/collections?f=html", "alternate", docs.MT_HTML, "collections")],
           "collections": items}
    rows = [[(c["id"], f"{base}/collections/{c['id']}?f=html"), c["title"], c["description"]] for c in items]
    return _answer(request, doc, "Collections", docs.html_table(["id", "title", "description"], rows))


@router.get("/collections/{collection_id}")
def collection(collection_id: str, request: Request, _principal: Reader, conn: Conn, settings: Config) -> Response:
    """One collection's metadata: links, extent, CRSs. 404 for an unknown collection (or an archived project's
    blockers)."""
    _only(request, {"f"})
    c = ogc.get_collection(conn, settings, collection_id)
    doc = docs.collection_doc(c, _base(request), ogc.collection_extent(conn, c, settings.srid), settings.srid)
    rows = [["extent", doc.get("extent")], ["crs", doc["crs"]], ["storageCrs", doc["storageCrs"]]]
    return _answer(request, doc, c.title, docs.html_table(["", ""], rows))


@router.get("/collections/{collection_id}/queryables")
def queryables(collection_id: str, request: Request, principal: Reader, conn: Conn, settings: Config) -> Response:
    """What the caller may filter on, as JSON Schema: owner fields only for inspectors and admins, who may see
    personal data. 404 for an unknown collection."""
    _only(request, {"f"})
    c = ogc.get_collection(conn, settings, collection_id)
    url = f"{_base(request)}/collections/{c.id}/queryables"
    return _schema_answer(request, c, url, docs.queryables_doc(c, url, c.queryables(principal.reveal_personal)),
                          "可查询属性")


@router.get("/collections/{collection_id}/schema")
def schema(collection_id: str, request: Request, _principal: Reader, conn: Conn, settings: Config) -> Response:
    """Every property of the collection's features with its type, as JSON Schema (Features Part 5): what a GIS
    client needs to type its fields without guessing from a page. 404 for an unknown collection."""
    _only(request, {"f"})
    c = ogc.get_collection(conn, settings, collection_id)
    url = f"{_base(request)}/collections/{c.id}/schema"
    return _schema_answer(request, c, url, docs.schema_doc(c, url), "要素属性")


def _schema_answer(request: Request, c: ogc.Collection, url: str, doc: dict, title: str) -> Response:
    rows = [[name, p["title"], p.get("type") or p.get("format"), ", ".join(p.get("enum", []))]
            for name, p in doc["properties"].items()]
    page = doc | {"links": [docs.link(url, "self", docs.MT_SCHEMA, "JSON Schema")]}
    if _wants_html(request):
        return HTMLResponse(docs.html_page(f"{c.title} · {title}", page,
                                           docs.html_table(["name", "title", "type", "values"], rows),
                                           page_header(request)))
    return _json(doc, docs.MT_SCHEMA)


def _items_query(request: Request, c: ogc.Collection, principal: Principal, storage_srid: int) -> ogc.ItemsQuery:
    """The items parameters, each checked: 400 for a malformed or unknown one, 422 for a filter on a property
    that is not queryable (for this caller)."""
    params = request.query_params
    queryables = c.queryables(principal.reveal_personal)
    attributes = {n for n, q in queryables.items() if q.type != "geometry"}
    for name in set(params) - set(docs.ITEM_PARAMETERS) - attributes:
        if any(f.name == name for f in c.fields):
            raise InvalidInput(f"{name!r} is not queryable with this token", name)
    _only(request, set(docs.ITEM_PARAMETERS) | attributes)
    for name in set(docs.ITEM_PARAMETERS) - {"f"}:
        if len(params.getlist(name)) > 1:
            raise BadRequest(f"give {name} once", name)
    crs = ogc.parse_crs(params.get("crs"), storage_srid, "crs")
    q = ogc.ItemsQuery(crs=crs, limit=_int(params, "limit", ogc.DEFAULT_LIMIT, 1, ogc.MAX_LIMIT),
                       offset=_int(params, "offset", 0, 0, 2**62), count=_bool(params, "count", True))
    if "bbox" in params:
        q.bbox = ogc.parse_bbox(params["bbox"], ogc.parse_crs(params.get("bbox-crs"), storage_srid, "bbox-crs"))
    elif "bbox-crs" in params:
        raise BadRequest("bbox-crs without bbox", "bbox-crs")
    if "datetime" in params:
        q.datetime = ogc.parse_datetime(params["datetime"])
    if "filter" in params:
        tree = cql2_sql.parse(params["filter"], params.get("filter-lang"))
        filter_crs = ogc.parse_crs(params.get("filter-crs"), storage_srid, "filter-crs")
        q.filter = cql2_sql.to_sql(tree, queryables, ogc.geometry_input(filter_crs, storage_srid))
    elif "filter-lang" in params or "filter-crs" in params:
        raise BadRequest("filter-lang and filter-crs go with a filter", "filter")
    q.equals = {name: params.getlist(name) for name in attributes if name in params}
    return q


def _int(params: Any, name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadRequest(f"{name} must be an integer", name) from exc
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}", name)
    return value


def _bool(params: Any, name: str, default: bool) -> bool:
    raw = params.get(name)
    if raw is None:
        return default
    if raw.lower() not in ("true", "false"):
        raise BadRequest(f"{name} must be true or false", name)
    return raw.lower() == "true"


def _with(request: Request, **changes: Any) -> str:
    """This request's URL with some parameters replaced (None removes one)."""
    pairs = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
    pairs += [(k, str(v)) for k, v in changes.items() if v is not None]
    return f"{_base(request)}{request.url.path[len(router.prefix):]}" + (f"?{urlencode(pairs)}" if pairs else "")


def _content_crs(crs: ogc.Crs) -> dict[str, str]:
    return {"Content-Crs": f"<{crs.uri}>"}


@router.get("/collections/{collection_id}/items")
def items(collection_id: str, request: Request, principal: Reader, conn: Conn, settings: Config) -> Response:
    """Features as GeoJSON (or HTML): bbox, limit/offset with next and prev links, crs and bbox-crs, datetime,
    a CQL2 filter, and equality filters on the queryables (``?stage=paid``)."""
    c = ogc.get_collection(conn, settings, collection_id)
    html = _wants_html(request)
    q = _items_query(request, c, principal, settings.srid)
    page = ogc.query_items(conn, c, q, storage_srid=settings.srid, reveal_personal=principal.reveal_personal)
    links = [docs.link(_with(request, f="json"), "self", docs.MT_GEOJSON, "this page"),
             docs.link(_with(request, f="html"), "alternate", docs.MT_HTML, "this page as HTML"),
             docs.link(f"{_base(request)}/collections/{c.id}", "collection", docs.MT_JSON, c.title)]
    fmt = "html" if html else "json"
    if page.has_next:
        links.append(docs.link(_with(request, offset=q.offset + q.limit, f=fmt), "next",
                               docs.MT_HTML if html else docs.MT_GEOJSON, "next page"))
    if q.offset > 0:
        links.append(docs.link(_with(request, offset=max(q.offset - q.limit, 0), f=fmt), "prev",
                               docs.MT_HTML if html else docs.MT_GEOJSON, "previous page"))
    doc: dict[str, Any] = {"type": "FeatureCollection", "features": page.features}
    if page.number_matched is not None:
        doc["numberMatched"] = page.number_matched
    doc |= {"numberReturned": len(page.features), "timeStamp": _now(), "links": links}
    if html:
        table = docs.items_table(c, page.features, f"{_base(request)}/collections/{c.id}/items/")
        summary = (f"<p>本页 {len(page.features)} 个要素"
                   + (f"，共 {page.number_matched} 个" if page.number_matched is not None else "") + "</p>")
        return HTMLResponse(docs.html_page(f"{c.title} · 要素", doc, summary + table, page_header(request)),
                            headers=_content_crs(q.crs))
    return _json(doc, docs.MT_GEOJSON, _content_crs(q.crs))


@router.get("/collections/{collection_id}/items/{feature_id}")
def item(collection_id: str, feature_id: str, request: Request, principal: Reader, conn: Conn,
         settings: Config) -> Response:
    """One feature as GeoJSON (or HTML) in ``crs`` (default CRS84, Content-Crs says which), owner fields masked
    unless the caller may see personal data. 404 for an unknown feature, 400 for an unsupported crs."""
    _only(request, {"f", "crs"})
    c = ogc.get_collection(conn, settings, collection_id)
    crs = ogc.parse_crs(request.query_params.get("crs"), settings.srid, "crs")
    feature = ogc.get_item(conn, c, feature_id, crs, storage_srid=settings.srid,
                           reveal_personal=principal.reveal_personal)
    here = f"{_base(request)}/collections/{c.id}"
    feature["links"] = [docs.link(_with(request, f="json"), "self", docs.MT_GEOJSON, "this feature"),
                        docs.link(_with(request, f="html"), "alternate", docs.MT_HTML, "this feature as HTML"),
                        docs.link(here, "collection", docs.MT_JSON, c.title)]
    rows = docs.property_rows(c, feature["properties"])
    return _answer(request, feature, f"{c.title} · {feature_id}", docs.html_table(["属性", "值"], rows),
                   docs.MT_GEOJSON, _content_crs(crs))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


# ---------------------------------------------------------------------------------------------
# OGC API - Tiles (the layers of gis.maps.tiles: parcels, projects, districts)


def _tiled(conn: Connection, settings: Settings, collection_id: str) -> ogc.Collection:
    c = ogc.get_collection(conn, settings, collection_id)
    if not docs.has_tiles(c):
        raise NotFound(f"{collection_id} has no vector tiles; tiled collections: parcels, projects, districts")
    return c


def _check_tms(tms: str) -> None:
    if tms != docs.TMS_ID:
        raise NotFound(f"no tile matrix set {tms!r}; use {docs.TMS_ID}")


@router.get("/tileMatrixSets")
def tile_matrix_sets(request: Request, _principal: Reader) -> Response:
    """The tile matrix sets the tiles are cut in: WebMercatorQuad only. Any signed-in user."""
    _only(request, {"f"})
    return _json(docs.tile_matrix_sets(_base(request)))


@router.get("/tileMatrixSets/{tms}")
def tile_matrix_set(tms: str, request: Request, _principal: Reader) -> Response:
    """WebMercatorQuad's definition (OGC TMS 2.0 JSON); 404 for any other id."""
    _only(request, {"f"})
    _check_tms(tms)
    return _json(docs.tile_matrix_set())


@router.get("/collections/{collection_id}/tiles")
def collection_tilesets(collection_id: str, request: Request, _principal: Reader, conn: Conn,
                        settings: Config) -> Response:
    """The vector tile sets of a tiled collection (parcels, projects, districts); 404 for the others."""
    _only(request, {"f"})
    return _json(docs.tilesets(_base(request), _tiled(conn, settings, collection_id)))


@router.get("/collections/{collection_id}/tiles/{tms}")
def collection_tileset(collection_id: str, tms: str, request: Request, _principal: Reader, conn: Conn,
                       settings: Config) -> Response:
    """The collection's WebMercatorQuad tile set: layer, zoom range, bounding box. 404 for an untiled collection or
    another tile matrix set."""
    _only(request, {"f"})
    _check_tms(tms)
    c = _tiled(conn, settings, collection_id)
    return _json(docs.tileset(_base(request), c, ogc.collection_extent(conn, c, settings.srid)))


@router.get("/collections/{collection_id}/tiles/{tms}/tilejson.json")
def collection_tilejson(collection_id: str, tms: str, request: Request, _principal: Reader, conn: Conn,
                        settings: Config) -> Response:
    """The tile set as TileJSON 3.0 for MapLibre and similar clients; takes no query parameters. 404 as for the tile
    set."""
    _only(request, set())
    _check_tms(tms)
    c = _tiled(conn, settings, collection_id)
    return _json(docs.tilejson(_base(request), c, ogc.collection_extent(conn, c, settings.srid)))


@router.get("/collections/{collection_id}/tiles/{tms}/{tile_matrix}/{tile_row}/{tile_col}",
            responses={200: {"content": {docs.MT_MVT: {}}}, 204: {"description": "No feature in this tile."}})
async def tile(collection_id: str, tms: str, tile_matrix: str, tile_row: str, tile_col: str, request: Request,
               _principal: Reader, db: Annotated[Database, Depends(get_database)], settings: Config) -> Response:
    """A Mapbox vector tile; note the OGC order: tile matrix (zoom), row (y), column (x). 204 when empty.
    The same tiles as /tiles, from the same cache, with the same ETag and 304 (503 with Retry-After when no slot
    comes free in time to build one)."""
    _only(request, {"f"})
    _check_tms(tms)
    z, y, x = (_tile_index(v) for v in (tile_matrix, tile_row, tile_col))
    if z > MAX_ZOOM or x >= 1 << z or y >= 1 << z:
        raise NotFound(f"tile {tile_matrix}/{tile_row}/{tile_col} is outside {docs.TMS_ID} (zoom 0 to {MAX_ZOOM})")
    if collection_id not in TILE_LAYERS:
        await db.read(_tiled, settings, collection_id)  # says which: no such collection, or one not tiled
    return await cached_tile(request, db, settings, collection_id, z, x, y, media_type=docs.MT_MVT)


def _tile_index(value: str) -> int:
    if not value.isdigit() or len(value) > 8:
        raise NotFound(f"no tile index {value!r}")
    return int(value)
