"""The video processing service layer: what the video_processing DAG's tasks call.

``requests`` turns queue messages and UI Params into work items; ``catalog`` holds the
catalog transactions (claim, publish, fail, reconcile); ``objects`` the object-storage
side (presigned sources, uploads of staged output, clean-up); ``steps`` composes them with
``vidflow.media`` into the DAG's steps. None of it imports Airflow.
"""
