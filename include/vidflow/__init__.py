"""vidflow: the back end of a video platform as Airflow-orchestrated pipelines."""
