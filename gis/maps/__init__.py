"""Maps that work offline: folium pages served with their own scripts, static PNGs and the PDF battle map.

``page`` (what every page shares: basemap, labels, colours, offline rendering), ``blocker_map``
(a project's blockers), ``district_map`` (percent cleared per district), ``landing`` (the
front page), ``static`` (``render_blocker_png`` for reports, legends placed off the project line),
``battle_map`` (the A3 PDF battle map, 作战图), ``assets`` (the npm files folium
is pointed at), ``gcj02`` (display shift for GCJ-02 basemaps). Vector tiles: ``gis.maps.tiles``.
"""
