"""Rates service: stores accepted rates, answers queries and streams live changes."""
