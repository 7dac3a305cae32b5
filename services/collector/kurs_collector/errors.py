"""Collector errors shared by the fetch layer and the feeds."""

from __future__ import annotations


class FeedError(Exception):
    """A feed could not produce observations (unreachable, malformed payload, ...)."""
