"""Run by Debian's own python3 (``/usr/bin/python3``, where ``python3-qgis`` lives), not by the project's venv:
a headless QGIS reading the service as a planner's QGIS would, following the README's steps.

Input: a JSON file (argv[1]) with ``base`` (the service's URL), ``user`` and ``token`` (null: no
authentication configuration), ``out`` (a folder for the PNGs), ``blockers`` (a blocker collection's id),
``imagery`` (an imagery layer's id), ``colours`` (stage → colour), ``zmin`` and ``zmax`` (the vector tiles'
zoom range) and ``extent_lonlat`` (what to draw: west, south, east, north). Output on stdout: one JSON document
with what QGIS saw for each layer (valid, feature count, field types, every feature's values) and where the PNG
of each was written.
Nothing from the project is imported: this is the client, knowing only the URL and the credentials.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The authentication database of this run, not the user's QGIS profile.
os.environ["QGIS_AUTH_DB_DIR_PATH"] = tempfile.mkdtemp(prefix="qgis-auth-")

from qgis.core import (  # noqa: E402 - the environment above must be set before QGIS loads
    Qgis,
    QgsApplication,
    QgsAuthMethodConfig,
    QgsCategorizedSymbolRenderer,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsDataSourceUri,
    QgsFillSymbol,
    QgsMapRendererSequentialJob,
    QgsMapSettings,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsRendererCategory,
    QgsVectorLayer,
    QgsVectorTileBasicRenderer,
    QgsVectorTileBasicRendererStyle,
    QgsVectorTileLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QDate, QDateTime, QSize, Qt, QVariant  # noqa: E402
from qgis.PyQt.QtGui import QColor  # noqa: E402


def basic_auth_config(user: str, token: str) -> str:
    """The README's step: an authentication configuration of type Basic, the token as the password."""
    manager = QgsApplication.authManager()
    if not manager.masterPasswordIsSet():
        manager.setMasterPassword("probe-master-password", True)
    config = QgsAuthMethodConfig()
    config.setMethod("Basic")
    config.setName("征收征迁")
    config.setConfig("username", user)
    config.setConfig("password", token)
    if not manager.storeAuthenticationConfig(config):
        raise RuntimeError("QGIS did not store the authentication configuration")
    return config.id()


def oapif_layer(base: str, collection: str, authcfg: str | None) -> QgsVectorLayer:
    """The README's step: Add WFS / OGC API - Features layer, URL <base>/ogc, the collection by its id."""
    uri = QgsDataSourceUri()
    uri.setParam("url", f"{base}/ogc")
    uri.setParam("typename", collection)
    if authcfg:
        uri.setAuthConfigId(authcfg)
    return QgsVectorLayer(uri.uri(False), collection, "OAPIF")


def stage_symbol(colour: str) -> QgsFillSymbol:
    # Outlines in the fill's own colour: every pixel of a parcel is its stage's colour, nothing blended in.
    return QgsFillSymbol.createSimple({"color": colour, "outline_color": colour, "outline_width": "0"})


def render(layer, extent_3857, path: str) -> str:
    """Draw one layer over ``extent_3857`` (Web Mercator), 512 px square, antialiasing off; the PNG's path."""
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:3857"))
    settings.setExtent(extent_3857)
    settings.setOutputSize(QSize(512, 512))
    settings.setBackgroundColor(QColor("white"))
    settings.setFlag(QgsMapSettings.Antialiasing, False)
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    job.renderedImage().save(path, "PNG")
    return path


def describe(layer: QgsVectorLayer) -> dict:
    """What QGIS made of a feature layer: its validity, count, field types and every feature's values."""
    if not layer.isValid():
        return {"valid": False}
    fields = {f.name(): f.typeName() for f in layer.fields()}
    features = []
    for f in layer.getFeatures():
        row = {"id": f.id()}
        for name in fields:
            value = f[name]
            if isinstance(value, QVariant) and value.isNull():  # how PyQGIS hands over a NULL
                value = None
            elif isinstance(value, (QDate, QDateTime)):
                value = value.toString(Qt.ISODate)
            row[name] = value
        features.append(row)
    return {"valid": True, "count": layer.featureCount(), "fields": fields,
            "python_types": {n: sorted({type(r[n]).__name__ for r in features if r[n] is not None})
                             for n in fields},
            "features": features}


def main() -> None:
    job = json.loads(open(sys.argv[1], encoding="utf-8").read())
    app = QgsApplication([], False)
    app.initQgis()
    messages: list[str] = []  # QGIS's own log (the 401s it met, say): shown when the test fails
    QgsApplication.messageLog().messageReceived.connect(lambda text, tag, level: messages.append(f"{tag}: {text}"))
    try:
        authcfg = basic_auth_config(job["user"], job["token"]) if job.get("user") else None
        colours = job["colours"]
        out: dict = {"qgis": Qgis.QGIS_VERSION}
        parcels = oapif_layer(job["base"], "parcels", authcfg)
        out["parcels"] = describe(parcels)
        blockers = oapif_layer(job["base"], job["blockers"], authcfg)
        out["blockers"] = describe(blockers)
        tiles = {}
        for form, template in (("xyz", f"{job['base']}/tiles/parcels/{{z}}/{{x}}/{{y}}.mvt"),
                               ("ogc", f"{job['base']}/ogc/collections/parcels/tiles/WebMercatorQuad/"
                                       "{z}/{y}/{x}")):
            source = f"type=xyz&url={template}&zmin={job['zmin']}&zmax={job['zmax']}"  # the README's zooms
            if authcfg:
                source += f"&authcfg={authcfg}"
            tiles[form] = QgsVectorTileLayer(source, f"parcels tiles ({form})")
        # The README's step: Add XYZ Tiles layer, the imagery tile URL, the same authentication configuration.
        source = (f"type=xyz&url={job['base']}/imagery/{job['imagery']}/tiles/{{z}}/{{x}}/{{y}}.png"
                  f"&zmin=0&zmax={job['zmax']}")
        imagery = QgsRasterLayer(source + (f"&authcfg={authcfg}" if authcfg else ""), "imagery", "wms")
        # Where to draw: the world's extent as the client is told it (an anonymous client is told nothing).
        w, s, e, n = job["extent_lonlat"]
        to_3857 = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:4326"),
                                         QgsCoordinateReferenceSystem("EPSG:3857"), QgsProject.instance())
        extent = to_3857.transformBoundingBox(QgsRectangle(w, s, e, n))
        categories = [QgsRendererCategory(stage, stage_symbol(colour), stage) for stage, colour in colours.items()]
        for name, layer in (("parcels", parcels), ("blockers", blockers)):
            if layer.isValid():
                layer.setRenderer(QgsCategorizedSymbolRenderer("stage", categories))
                out[name]["png"] = render(layer, extent, os.path.join(job["out"], f"{name}.png"))
        out["imagery"] = {"valid": imagery.isValid()}
        if imagery.isValid():
            out["imagery"]["png"] = render(imagery, extent, os.path.join(job["out"], "imagery.png"))
        out["tiles"] = {}
        for form, layer in tiles.items():
            styles = []
            for stage, colour in colours.items():
                style = QgsVectorTileBasicRendererStyle(stage, "parcels", QgsWkbTypes.PolygonGeometry)
                style.setFilterExpression(f"\"stage\" = '{stage}'")
                style.setSymbol(stage_symbol(colour))
                styles.append(style)
            renderer = QgsVectorTileBasicRenderer()
            renderer.setStyles(styles)
            layer.setRenderer(renderer)
            out["tiles"][form] = {"valid": layer.isValid(),
                                  "png": render(layer, extent, os.path.join(job["out"], f"tiles-{form}.png"))}
        out["messages"] = messages
        print(json.dumps(out, ensure_ascii=False))
        status = 0
    except Exception:  # noqa: BLE001 - reported to the test, which shows it
        traceback.print_exc()
        status = 1
    # Leave without QGIS's teardown: with layers still alive, exitQgis() crashes 3.22 after the work is done.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    main()
