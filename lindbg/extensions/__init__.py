"""Extensions that ship with lindbg: Python modules in DESIGN.md §6's shape (a dict
``commands`` of ``fn(client, args)``, optional ``debug_extension_*`` functions).

``lindbg.extensions.linux`` adds ``!maps``, ``!fds``, ``!auxv`` and ``!signals``;
``.load lindbg.extensions.linux`` puts it in the chain, and ``!name`` finds its commands
even when it is not loaded (after every loaded extension, as a last resort).
"""
