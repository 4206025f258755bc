"""Tickets: numbering, due times, storage and history of service requests (spec §3)."""
