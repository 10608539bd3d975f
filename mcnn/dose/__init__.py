"""Dose-response analysis of soft predictions (issue 6, part 1)."""
