"""Customer channels: Rasa input channels and the outbound side used by agents and notices."""
