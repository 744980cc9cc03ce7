"""Crash dumps: ELF core files read (and written) behind the Target interface."""
