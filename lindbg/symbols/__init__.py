"""Symbols: ELF images and their symbol tables, separate debug files, module names,
line tables and call-frame information.

Everything here is read lazily (PERF.md, "Symbols"): opening an image parses its
headers only; a symbol table, a line table or an FDE is read the first time a
question needs it and kept. No reader walks a whole module up front.
"""
