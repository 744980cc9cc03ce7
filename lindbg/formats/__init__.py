"""File formats both sides of the tree use: ELF's layouts and numbers
(``elfdefs``) and the ELF core writer (``corewriter``). They know nothing of
targets, symbols or the engine, so ``arch``, ``os``, ``symbols`` and ``targets``
all build on them."""
