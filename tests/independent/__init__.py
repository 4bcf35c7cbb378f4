"""Independent reimplementation of the MAS criteria sets, written from the papers (see DECISIONS.md)."""
