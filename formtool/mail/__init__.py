"""Mail: addresses, contact lists, templates, messages, SMTP sessions, the outbox."""
