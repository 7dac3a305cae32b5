"""Collector service: runs feeds on their schedules and delivers observations to the validator."""
