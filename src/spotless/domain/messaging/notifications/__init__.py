"""What is sent, to whom and when (issue 13): the kinds of message other contexts' events and the
periodic jobs request through `messaging.public`, their default templates, the reminder rule and
the digests. `actors` declares them all (imported by the domain registry)."""
