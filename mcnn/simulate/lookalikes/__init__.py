"""Synthetic look-alikes of the eight datasets' download layouts (for tests and demos)."""
