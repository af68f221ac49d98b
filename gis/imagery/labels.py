"""The Chinese words of the imagery checks' findings, importable without rasterio (the checks' columns)."""

SUSPECTED_ZH = {"building": "疑似抢建", "planting": "疑似抢栽", "building_or_planting": "疑似抢建或抢栽"}
