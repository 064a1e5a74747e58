"""The upload service: tus 1.0.0 resumable uploads streamed into S3 multipart.

``protocol`` parses and validates the tus headers (pure functions), ``service`` holds
every catalog query and S3 call (with ``store`` for S3 and ``locks`` for the cross-replica
writer lock), ``routes`` the thin HTTP endpoints and ``app`` the FastAPI factory
``create_app()``. Run it with ``python -m vidflow.uploads`` (``make up`` does).
"""
