"""Debugging servers and remote clients (DESIGN section 4): one live session shared
by clients on other threads, processes and machines."""
