"""Airflow-facing pieces of the vidflow library (operators, callbacks).

Only this package imports Airflow; everything else stays Airflow-agnostic.
"""
