"""Parcel data in and out of the files planners and surveyors exchange.

- ``fields``: the parcel fields a file can fill, the column names (Chinese and English) that name
  them, and turning cell values into field values;
- ``readers``: GeoPackage, zipped Shapefile, GeoJSON, FlatGeobuf, KML, CSV and XLSX, read in batches;
- ``crs``: which coordinate systems files may use, guessing one when a file states none, and
  naming the likely mistake when a parcel lands far from the city;
- ``profiles``: named, reusable field mappings (table ``import_profiles``);
- ``importer``: validate a file row by row, then upsert all of it or nothing;
- ``export``: any parcel list to CSV, XLSX, GeoJSON, GeoPackage, Shapefile, FlatGeobuf or KML, streamed.
"""
