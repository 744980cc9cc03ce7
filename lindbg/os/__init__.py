"""Thin operating-system bindings (Linux only for now)."""
