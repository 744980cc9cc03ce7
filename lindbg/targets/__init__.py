"""What the engine debugs, one package per kind, all behind ``Target``."""
