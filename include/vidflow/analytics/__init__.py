"""Platform analytics: watch events from the events bucket to Delta tables and back to the
catalog (the ``platform_analytics`` DAG).

* :mod:`vidflow.analytics.window`: what one run processes (receive hours, days, region)
  and the typed payloads its tasks hand each other; no Spark, safe at DAG parse time.
* :mod:`vidflow.analytics.quality`: the validation rules, defined once and rendered as
  Spark conditions (a reason per bad row) and as a Great Expectations suite (the gate).
* :mod:`vidflow.analytics.silver`: bronze NDJSON lines -> silver ``watch_events`` and
  ``watch_events_quarantine`` (pure transforms; ``jobs/watch_events_silver.py`` wires them).
* :mod:`vidflow.analytics.gold`, :mod:`vidflow.analytics.catalog_sync`: the daily part.

Table contract: see docs/analytics.md, "The tables".
"""

from __future__ import annotations

from typing import Final

#: Lake table names, under ``lake_path(settings, "analytics", NAME)``.
SILVER_TABLE: Final = "watch_events"
QUARANTINE_TABLE: Final = "watch_events_quarantine"
