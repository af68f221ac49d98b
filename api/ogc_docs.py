"""The documents of the OGC API: conformance, collection metadata, queryables (JSON Schema), the
OpenAPI 3.0 description with one items path per collection, tile sets, and their HTML pages.

The OpenAPI document lists each collection's queryables as query parameters of that collection's own
items path: GDAL's OAPIF driver (and so QGIS) sends an attribute filter to the server only for
properties it finds there.
"""

from __future__ import annotations

from html import escape
from typing import Any

import orjson

from gis.domain.stages import KIND_LABELS_ZH, STAGE_LABELS_ZH
from gis.maps.tiles import MAX_ZOOM, TILE_LAYERS
from gis.ogc import collections as ogc
from gis.ogc.cql2 import Queryable
from gis.records.projects import KIND_LABELS_ZH as PROJECT_KINDS_ZH

MT_JSON = "application/json"
MT_GEOJSON = "application/geo+json"
MT_HTML = "text/html"
MT_SCHEMA = "application/schema+json"
MT_OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
MT_MVT = "application/vnd.mapbox-vector-tile"
REL = "http://www.opengis.net/def/rel/ogc/1.0/"
TMS_ID = "WebMercatorQuad"
TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/landing-page",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/json",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/tms/2.0/conf/tilematrixset",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset",
]
ITEM_PARAMETERS = ("f", "limit", "offset", "bbox", "bbox-crs", "crs", "datetime", "filter", "filter-lang",
                   "filter-crs", "count")
_JSON_TYPES = {"string": {"type": "string"}, "integer": {"type": "integer"}, "number": {"type": "number"},
               "boolean": {"type": "boolean"}, "date": {"type": "string", "format": "date"},
               "timestamp": {"type": "string", "format": "date-time"}}


def link(href: str, rel: str, type_: str, title: str = "", **extra: Any) -> dict[str, Any]:
    """An OGC link object; ``extra`` adds members such as ``templated=True``."""
    out = {"href": href, "rel": rel, "type": type_}
    if title:
        out["title"] = title
    return out | extra


def has_tiles(c: ogc.Collection) -> bool:
    """Whether the collection is also served as vector tiles (parcels, projects, districts; not the blocker lists)."""
    return c.id in TILE_LAYERS


def landing(base: str) -> dict[str, Any]:
    """The landing page under ``base``: links to the API definition, conformance, collections and tile matrix sets."""
    return {
        "title": "征收征迁 parcel-blocker · OGC API",
        "description": "Parcels, project footprints, districts and each project's blocking parcels as live layers "
                       "for QGIS, ArcGIS and GDAL (OGC API - Features, CRS, Filtering; OGC API - Tiles).",
        "links": [
            link(base, "self", MT_JSON, "this document"),
            link(base + "?f=html", "alternate", MT_HTML, "this document as HTML"),
            link(base + "/api", "service-desc", MT_OPENAPI, "the API definition (OpenAPI 3.0)"),
            link(base + "/api?f=html", "service-doc", MT_HTML, "the API documentation"),
            link(base + "/conformance", "conformance", MT_JSON, "conformance classes"),
            link(base + "/conformance", REL + "conformance", MT_JSON, "conformance classes"),
            link(base + "/collections", "data", MT_JSON, "the collections"),
            link(base + "/collections", REL + "data", MT_JSON, "the collections"),
            link(base + "/tileMatrixSets", REL + "tiling-schemes", MT_JSON, "tile matrix sets"),
        ],
    }


def collection_doc(c: ogc.Collection, base: str, extent: dict | None, storage_srid: int) -> dict[str, Any]:
    """A collection's metadata: links (items, queryables, tiles when it has them), the CRSs it answers in, its
    storage CRS, and its extent when known."""
    here = f"{base}/collections/{c.id}"
    links = [
        link(here, "self", MT_JSON, c.title),
        link(here + "?f=html", "alternate", MT_HTML, c.title),
        link(here + "/items", "items", MT_GEOJSON, "要素 (GeoJSON)"),
        link(here + "/items?f=html", "items", MT_HTML, "要素 (HTML)"),
        link(here + "/queryables", REL + "queryables", MT_SCHEMA, "可查询属性"),
        link(here + "/schema", REL + "schema", MT_SCHEMA, "要素属性及类型"),
        link(here + "/schema", "describedby", MT_SCHEMA, "要素属性及类型"),
        link(base + "/collections", "collection", MT_JSON, "all collections"),
    ]
    if has_tiles(c):
        links.append(link(here + "/tiles", REL + "tilesets-vector", MT_JSON, "矢量瓦片"))
    doc = {
        "id": c.id, "title": c.title, "description": c.description, "keywords": list(c.keywords),
        "itemType": "feature", "crs": [x.uri for x in ogc.supported_crs(storage_srid)],
        "storageCrs": ogc.EPSG_URI.format(storage_srid), "links": links,
    }
    if extent:
        doc["extent"] = extent
    return doc


def queryables_doc(c: ogc.Collection, url: str, queryables: dict[str, Queryable]) -> dict[str, Any]:
    """The queryables as a JSON Schema (Features Part 3): the geometry marked primary-geometry, enumerated values
    listed."""
    properties: dict[str, Any] = {}
    for q in queryables.values():
        if q.type == "geometry":
            properties[q.name] = {"title": q.title, "format": "geometry-" + c.geometry_type.lower(),
                                  "x-ogc-role": "primary-geometry"}
        else:
            properties[q.name] = {"title": q.title, **_JSON_TYPES[q.type]} | ({"enum": list(q.enum)} if q.enum else {})
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": url, "type": "object",
            "title": c.title, "properties": properties, "additionalProperties": False}


def schema_doc(c: ogc.Collection, url: str) -> dict[str, Any]:
    """The features' schema (Features Part 5): every property a feature carries, with its type, owner fields
    included (they come masked to callers who may not see them, but come); a value may be null."""
    doc = queryables_doc(c, url, c.queryables(reveal_personal=True))
    return doc | {"title": f"{c.title} · 要素属性"}


# ---------------------------------------------------------------------------------------------
# OpenAPI 3.0


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/parameters/{name}"}


def _query(name: str, description: str, schema: dict, **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema,
            "style": "form", "explode": False} | extra


_PARAMETERS = {
    "f": _query("f", "The representation: json (default) or html.", {"type": "string", "enum": ["json", "html"]}),
    "limit": _query("limit", "How many features a page holds.",
                    {"type": "integer", "minimum": 1, "maximum": ogc.MAX_LIMIT, "default": ogc.DEFAULT_LIMIT}),
    "offset": _query("offset", "How many features to skip (the next/prev links carry it).",
                     {"type": "integer", "minimum": 0, "default": 0}),
    "bbox": _query("bbox", "Features intersecting minx,miny,maxx,maxy in bbox-crs (axis order of that CRS).",
                   {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}}),
    "bbox-crs": _query("bbox-crs", "The CRS of bbox (default CRS84).", {"type": "string", "format": "uri"}),
    "crs": _query("crs", "The CRS of the returned geometries (default CRS84).", {"type": "string", "format": "uri"}),
    "datetime": _query("datetime", "An RFC 3339 date or interval (a/b, ../b, a/..) on the collection's dates.",
                       {"type": "string"}),
    "filter": _query("filter", "A CQL2 filter on the queryables.", {"type": "string"}),
    "filter-lang": _query("filter-lang", "The language of filter.",
                          {"type": "string", "enum": ["cql2-text", "cql2-json"], "default": "cql2-text"}),
    "filter-crs": _query("filter-crs", "The CRS of the filter's geometries (default CRS84).",
                         {"type": "string", "format": "uri"}),
    "count": _query("count", "false skips numberMatched (one query less).", {"type": "boolean", "default": True}),
    "featureId": {"name": "featureId", "in": "path", "required": True, "schema": {"type": "integer"}},
    "tileMatrixSetId": {"name": "tileMatrixSetId", "in": "path", "required": True,
                        "schema": {"type": "string", "enum": [TMS_ID]}},
    "tileMatrix": {"name": "tileMatrix", "in": "path", "required": True, "schema": {"type": "string"}},
    "tileRow": {"name": "tileRow", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}},
    "tileCol": {"name": "tileCol", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}},
}


def _get(summary: str, content: dict[str, Any], params: list | None = None, ok: str = "200") -> dict[str, Any]:
    return {"get": {
        "summary": summary, "parameters": params or [_ref("f")],
        "responses": {ok: {"description": summary, "content": content},
                      "400": {"$ref": "#/components/responses/BadRequest"},
                      "401": {"$ref": "#/components/responses/Unauthorized"},
                      "404": {"$ref": "#/components/responses/NotFound"}},
    }}


def openapi_doc(base: str, collections: list[tuple[ogc.Collection, dict[str, Queryable]]]) -> dict[str, Any]:
    """The OpenAPI 3.0 document of /ogc: one items path per collection with its own queryables as query parameters,
    the only filters GDAL (and so QGIS) sends to the server."""
    obj = {"schema": {"type": "object"}}
    paths: dict[str, Any] = {
        "/": _get("Landing page", {MT_JSON: obj, MT_HTML: {}}),
        "/conformance": _get("Conformance classes", {MT_JSON: obj, MT_HTML: {}}),
        "/api": _get("This API definition", {MT_OPENAPI: obj, MT_HTML: {}}),
        "/collections": _get("The collections", {MT_JSON: obj, MT_HTML: {}}),
        "/tileMatrixSets": _get("Tile matrix sets", {MT_JSON: obj}),
        "/tileMatrixSets/{tileMatrixSetId}": _get("A tile matrix set", {MT_JSON: obj}, [_ref("tileMatrixSetId")]),
    }
    for c, queryables in collections:
        here = f"/collections/{c.id}"
        attributes = [_query(q.name, f"{q.title}: features whose {q.name} equals this value (repeat for any of "
                             "several values).", _JSON_TYPES[q.type] | ({"enum": list(q.enum)} if q.enum else {}))
                      for q in queryables.values() if q.type != "geometry"]
        paths[here] = _get(c.title, {MT_JSON: obj, MT_HTML: {}})
        paths[here + "/items"] = _get(f"{c.title}: features", {MT_GEOJSON: obj, MT_HTML: {}},
                                      [_ref(p) for p in ITEM_PARAMETERS] + attributes)
        paths[here + "/items/{featureId}"] = _get(f"{c.title}: one feature", {MT_GEOJSON: obj, MT_HTML: {}},
                                                  [_ref("featureId"), _ref("crs"), _ref("f")])
        paths[here + "/queryables"] = _get(f"{c.title}: queryables", {MT_SCHEMA: obj, MT_HTML: {}})
        paths[here + "/schema"] = _get(f"{c.title}: schema", {MT_SCHEMA: obj, MT_HTML: {}})
        if has_tiles(c):
            paths[here + "/tiles"] = _get(f"{c.title}: tile sets", {MT_JSON: obj})
            paths[here + "/tiles/{tileMatrixSetId}"] = _get(f"{c.title}: tile set", {MT_JSON: obj},
                                                            [_ref("tileMatrixSetId")])
            paths[here + "/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}"] = _get(
                f"{c.title}: a vector tile", {MT_MVT: {"schema": {"type": "string", "format": "binary"}}},
                [_ref(p) for p in ("tileMatrixSetId", "tileMatrix", "tileRow", "tileCol")])
    error = {"description": "", "content": {MT_JSON: {"schema": {
        "type": "object", "required": ["detail"],
        "properties": {"detail": {"type": "string"}, "where": {"type": "string"}}}}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "征收征迁 parcel-blocker · OGC API", "version": "1.0.0",
                 "description": "OGC API - Features (Core, GeoJSON, HTML, OpenAPI 3.0; CRS; Filtering with CQL2) and "
                                "OGC API - Tiles. Send 'Authorization: Bearer <token>', or HTTP Basic with the user "
                                "name and an API token as the password."},
        "servers": [{"url": base}],
        "security": [{"bearer": []}, {"basic": []}],
        "paths": paths,
        "components": {
            "parameters": _PARAMETERS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "basic": {"type": "http", "scheme": "basic",
                                          "description": "The user name, and an API token as the password."}},
            "responses": {name: error | {"description": text} for name, text in (
                ("BadRequest", "A parameter is invalid."), ("Unauthorized", "No valid token."),
                ("NotFound", "No such resource."))},
        },
    }


# ---------------------------------------------------------------------------------------------
# OGC API - Tiles


def tile_matrix_sets(base: str) -> dict[str, Any]:
    """The tile matrix sets: WebMercatorQuad only."""
    return {"tileMatrixSets": [{
        "id": TMS_ID, "title": "Google Maps Compatible for the World", "uri": TMS_URI,
        "links": [link(f"{base}/tileMatrixSets/{TMS_ID}", "self", MT_JSON, TMS_ID),
                  link(f"{base}/tileMatrixSets/{TMS_ID}", REL + "tiling-scheme", MT_JSON, TMS_ID)],
    }]}


def tile_matrix_set() -> dict[str, Any]:
    """WebMercatorQuad as OGC TMS 2.0 JSON, morecantile's copy of the published definition."""
    import morecantile  # the OGC TMS 2.0 definition, as published

    return morecantile.tms.get(TMS_ID).model_dump(mode="json", exclude_none=True)


def _tile_template(base: str, c: ogc.Collection) -> str:
    return f"{base}/collections/{c.id}/tiles/{TMS_ID}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"


def tilesets(base: str, c: ogc.Collection) -> dict[str, Any]:
    """A tiled collection's tile sets (WebMercatorQuad only) with the templated tile URL."""
    here = f"{base}/collections/{c.id}/tiles"
    return {
        "links": [link(here, "self", MT_JSON, "tile sets"),
                  link(f"{base}/collections/{c.id}", "collection", MT_JSON, c.title)],
        "tilesets": [{
            "title": c.title, "dataType": "vector", "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
            "tileMatrixSetURI": TMS_URI,
            "links": [link(f"{here}/{TMS_ID}", "self", MT_JSON, f"{c.title} · {TMS_ID}"),
                      link(f"{base}/tileMatrixSets/{TMS_ID}", REL + "tiling-scheme", MT_JSON, TMS_ID),
                      link(_tile_template(base, c), "item", MT_MVT, "a tile", templated=True)],
        }],
    }


def tileset(base: str, c: ogc.Collection, extent: dict | None) -> dict[str, Any]:
    """A tiled collection's WebMercatorQuad tile set: its one layer and zoom range, the bounding box (CRS84) when the
    extent is known, a TileJSON alternate."""
    here = f"{base}/collections/{c.id}/tiles/{TMS_ID}"
    layer = TILE_LAYERS[c.id]
    doc: dict[str, Any] = {
        "title": c.title, "description": f"{c.title}: Mapbox vector tiles; the feature id is the {c.id} id.",
        "dataType": "vector", "crs": "http://www.opengis.net/def/crs/EPSG/0/3857", "tileMatrixSetURI": TMS_URI,
        "layers": [{"id": c.id, "title": c.title, "dataType": "vector", "geometryDimension": 2,
                    "minTileMatrix": str(layer.min_zoom), "maxTileMatrix": str(MAX_ZOOM)}],
        "links": [link(here, "self", MT_JSON, "this tile set"),
                  link(f"{base}/tileMatrixSets/{TMS_ID}", REL + "tiling-scheme", MT_JSON, TMS_ID),
                  link(f"{base}/collections/{c.id}", REL + "geodata", MT_JSON, c.title),
                  link(f"{here}/tilejson.json", "alternate", MT_JSON, "TileJSON"),
                  link(_tile_template(base, c), "item", MT_MVT, "a tile", templated=True)],
    }
    if extent:
        bbox = extent["spatial"]["bbox"][0]
        doc["boundingBox"] = {"lowerLeft": bbox[:2], "upperRight": bbox[2:], "crs": ogc.CRS84}
    return doc


def tilejson(base: str, c: ogc.Collection, extent: dict | None) -> dict[str, Any]:
    """TileJSON 3.0 for MapLibre and the like: xyz tile URL, zoom range, bounds and centre when the extent is known."""
    layer = TILE_LAYERS[c.id]
    doc: dict[str, Any] = {
        "tilejson": "3.0.0", "name": c.id, "description": c.title, "scheme": "xyz",
        "tiles": [f"{base}/collections/{c.id}/tiles/{TMS_ID}/{{z}}/{{y}}/{{x}}"],
        "minzoom": layer.min_zoom, "maxzoom": MAX_ZOOM,
        "vector_layers": [{"id": c.id, "description": c.title, "minzoom": layer.min_zoom, "maxzoom": MAX_ZOOM,
                           "fields": {}}],
    }
    if extent:
        bbox = extent["spatial"]["bbox"][0]
        doc["bounds"] = bbox
        doc["center"] = [(bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2, max(layer.min_zoom, 14)]
    return doc


# ---------------------------------------------------------------------------------------------
# HTML


def html_page(title: str, doc: dict[str, Any], body: str = "", header: str = "") -> str:
    """A plain page under the site's ``header``: the title, the document's links, then ``body`` (already
    escaped)."""
    links = "".join(
        f'<li><a href="{escape(x["href"], quote=True)}">{escape(x.get("title") or x["href"])}</a> '
        f'<small>{escape(x["rel"])} · {escape(x.get("type", ""))}</small></li>'
        for x in doc.get("links", []) if not x.get("templated"))
    description = f"<p>{escape(doc['description'])}</p>" if doc.get("description") else ""
    return (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            '<style>body{font-family:sans-serif;margin:1.5em;max-width:80em}table{border-collapse:collapse}'
            'td,th{border:1px solid #ccc;padding:.2em .5em;font-size:90%}th{background:#f4f4f4}'
            '.pb-site-header{margin:-1.5em -1.5em 1em}</style></head>'
            f"<body>{header}<h1>{escape(title)}</h1>{description}<ul>{links}</ul>{body}</body></html>")


# People read the HTML pages: coded values shown by their Chinese labels (the JSON keeps the codes).
_VALUE_LABELS: dict[str, dict[str, str]] = {"stage": STAGE_LABELS_ZH, "kind": KIND_LABELS_ZH | PROJECT_KINDS_ZH}


def shown(name: str, value: Any) -> Any:
    """A property's value as a person reads it: stage and kind codes by their labels, booleans as 是/否."""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, str):
        return _VALUE_LABELS.get(name, {}).get(value, value)
    return value


def property_rows(c: ogc.Collection, properties: dict[str, Any]) -> list[list[Any]]:
    """A feature's properties as (label, value) rows for its HTML page."""
    titles = {f.name: f.title or f.name for f in c.fields}
    return [[titles.get(k, k), shown(k, v)] for k, v in properties.items()]


def items_table(c: ogc.Collection, features: list[dict[str, Any]], item_url: str) -> str:
    """A page of features as an HTML table: Chinese column titles, labelled values, each id linking its page."""
    names = [f.name for f in c.fields]
    rows = [[(f["id"], f"{item_url}{f['id']}?f=html")] + [shown(n, f["properties"][n]) for n in names]
            for f in features]
    return html_table(["编号", *(f.title or f.name for f in c.fields)], rows)


def html_table(headers: list[str], rows: list[list[Any]]) -> str:
    """An HTML table, every cell escaped: a (text, href) tuple becomes a link, dicts and lists show as JSON."""
    head = "".join(f"<th>{escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    if isinstance(value, tuple):  # (text, href)
        return f'<a href="{escape(value[1], quote=True)}">{escape(str(value[0]))}</a>'
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return f"<code>{escape(orjson.dumps(value).decode())}</code>"
    return escape(str(value))
