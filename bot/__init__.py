"""供电业务受理助手 — the application behind the Rasa assistant.

`bot/` holds the business: the catalog, normalisation, tickets, queries, handover, channels and
the console. `actions/` is a thin Rasa adapter over it.
"""
