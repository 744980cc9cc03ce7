"""Architecture descriptions (register layouts, breakpoint instructions)."""
