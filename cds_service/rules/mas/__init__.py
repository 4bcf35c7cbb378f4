"""MAS / secondary HLH criteria sets: one module each, thresholds beside their citation, a version."""
