"""Queries answered in the conversation: bills and outages, behind small replaceable services."""
