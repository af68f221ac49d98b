"""Imagery: registered GeoTIFFs on the maps, per-parcel statistics, and change after a project's freeze.

- ``layers``: register, list and convert (COG) rasters; the basemap list the maps offer.
- ``render``: Web Mercator tiles and parcel chips (PNG), styled by the layer's kind.
- ``stats``: zonal statistics per parcel, reading only each parcel's window.
- ``change``: the post-freeze check (抢栽抢种、偷建私建) between two epochs of a layer.
- ``demo``: two synthetic height epochs for the demo city.
- ``labels``: the Chinese words of the checks' findings, without loading rasterio.

Nothing is imported here: rasterio and rio-tiler load only with the modules that use them, so the CLI, the
API's other routes and the checks without imagery start without them.
"""
