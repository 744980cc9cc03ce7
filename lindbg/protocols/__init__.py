"""Wire protocols as pure state machines: bytes in, messages out, no I/O.

The socket, the threads and the timeouts belong to the caller; a module here
only turns the bytes it is given into checked messages and tells what it may
send next, so it is tested without a network.
"""
