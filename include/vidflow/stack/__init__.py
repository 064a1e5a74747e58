"""The local stack: PostgreSQL, the S3/SQS endpoint, MLflow and Airflow under supervisord.

Run it with ``python -m vidflow.stack up|down|status`` (the Makefile's ``make up`` etc.).
"""
