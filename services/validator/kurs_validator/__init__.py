"""Validator service: checks observations, normalises them to the pivot and forwards accepted rates."""
