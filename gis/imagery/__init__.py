"""Imagery: registered GeoTIFFs on the maps, per-parcel statistics, and change after a project's freeze.

- ``layers``: register, list and convert (COG) rasters; the basemap list the maps offer.
- ``render``: Web Mercator tiles and parcel chips (PNG), styled by the layer's kind.
- ``stats``: zonal statistics per parcel, reading only each parcel's window.
- ``change``: the post-freeze check (抢栽抢种、偷建私建) between two epochs of a layer.
- ``demo``: two synthetic height epochs for the demo city.
"""

from gis.imagery.layers import KINDS, ImageryLayer, get_layer, imagery_basemaps, list_layers, register_layer, to_cog

__all__ = ["KINDS", "ImageryLayer", "get_layer", "imagery_basemaps", "list_layers", "register_layer", "to_cog"]
