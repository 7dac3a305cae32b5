"""The SDK's version: its major number is the version of the proto package it speaks."""

from __future__ import annotations

PROTO_PACKAGE = "kurs.rates.v1"
__version__ = "1.0.0"
