"""The engine: sessions, clients, callbacks, breakpoints and the event loop."""
