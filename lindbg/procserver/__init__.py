"""The process server (lindbgsrv): low-level target access over the GDB remote serial protocol."""
