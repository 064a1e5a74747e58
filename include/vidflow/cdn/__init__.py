"""The CDN: nginx tiers in front of the media bucket and their CloudFront-format logs.

- :mod:`vidflow.cdn.config` generates each tier's nginx.conf from settings (one shield,
  one edge per region; ``make up`` runs them as supervised services).
- :mod:`vidflow.cdn.logformat` defines the CloudFront standard log format once: fields,
  line writer and parser, %-encoding, result types, object names.
- :mod:`vidflow.cdn.shipper` rotates each edge's log and uploads gzip objects named like
  CloudFront's to the cdn-logs bucket, losing and duplicating nothing.

``python -m vidflow.cdn nginx TIER`` runs one tier in the foreground,
``python -m vidflow.cdn ship`` runs the shipper, ``python -m vidflow.cdn conf TIER``
prints a tier's configuration.
"""
