"""The bot's durable state in SQLite."""
