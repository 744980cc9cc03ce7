"""Transports of debugging servers: option strings, pipe directories, listeners and connections."""
