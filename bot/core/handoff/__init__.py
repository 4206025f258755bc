"""Handover to human agents: the queue of conversations waiting for a person (spec §4)."""
