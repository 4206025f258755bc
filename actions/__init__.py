"""Rasa actions: a thin adapter from the Rasa tracker to the application in `bot/`."""
