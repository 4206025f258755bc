"""Customer channels, registered with Rasa in credentials.yml: the REST channel (bot/plugins/channels/rest.py),
Telegram (telegram.py, telegram_poll.py) and the WeChat Official Account (wechat.py, wechat_turns.py).

Their settings come from `bot.core.settings`; what staff send to customers goes through Rasa's
HTTP API (bot/core/rasa_api.py) into these channels' output side.
"""
