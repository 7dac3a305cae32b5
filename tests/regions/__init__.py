"""Regions drills: backup/restore and two-region failover on one machine (marker `regions`)."""
