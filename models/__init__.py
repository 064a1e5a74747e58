"""The recommender: datasets, LightFM training, ranker, evaluation, scoring.

Filled in by the recommendations issues; present now so tooling (mypy, imports) covers it.
"""
