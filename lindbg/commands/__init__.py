"""The cdb-style console's commands and their text output."""
