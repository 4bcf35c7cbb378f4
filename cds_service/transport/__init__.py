"""HTTP transport: routing, envelope parsing, error answers. Knows no clinical words."""
