"""Command-line programs: ``lindbg`` (the cdb-style console) and ``lindbgsrv``
(the process server). Both are placeholders until their issues land."""
