"""Retention and data rights: how long each organisation keeps what, the system job that applies
it, and a client's export and erasure on request."""
