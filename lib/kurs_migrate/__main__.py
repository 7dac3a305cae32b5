"""`python -m kurs_migrate PROJECT [--apply] [--kurs-url URL] [--kurs-key KEY]`."""

from __future__ import annotations

import sys

from kurs_migrate.cli import main

sys.exit(main())
