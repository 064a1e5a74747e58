"""The viewer API: public video metadata, the creator's own videos, metadata edits and
watch events (``python -m vidflow.viewer``; see :mod:`vidflow.viewer.app`)."""
