"""Spark job entry points: ``spark-submit jobs/<name>.py`` or a DAG's Spark task."""
