"""Media processing as plain, typed functions: probe and validate a source, plan the
bitrate ladder, build ffmpeg commands, cut CMAF segments and write HLS/DASH manifests,
make thumbnails and a storyboard.

Nothing here knows about Airflow, S3 or the catalog; ``vidflow.processing`` wires these
functions to storage and ``dags/video_processing.py`` to the scheduler.
"""
