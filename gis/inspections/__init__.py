"""Inspection checks kept in modules of their own, built on the pieces of ``gis.checks`` and joining its registry.

``gis.checks`` imports these modules at its end to register them; importing ``gis.checks`` first here makes
either import order work (this package first, or ``gis.checks`` first).
"""

import gis.checks  # noqa: F401 - see above
