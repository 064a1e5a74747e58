"""The video processing service layer: what the video_processing DAG's tasks call.

``contracts`` defines what the tasks hand each other (queue message, video job, encode,
rendition result, outcome); ``requests`` turns queue messages and UI Params
into work items. The steps, one module each: ``probing`` (claim, probe, validate, plan),
``planning`` (fan-out into encodes), ``transcoding`` (encode with posters, cut,
stage), ``publishing`` (manifests, the catalog flip) and ``maintenance`` (reconciliation, the
orphan sweep); ``runs`` holds what they share. ``catalog`` holds the catalog
transactions and ``objects`` the object-storage side. None of it imports Airflow.
"""
