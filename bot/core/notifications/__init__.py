"""Messages the bureau sends to a customer on its own initiative (ticket status changes).

A notice is written in the same transaction as the change that causes it (an outbox), then
delivered through Rasa into the customer's channel by `bot.core.notifications.delivery`, with
retries; every outcome is recorded on the notice and in the ticket's history.
"""
