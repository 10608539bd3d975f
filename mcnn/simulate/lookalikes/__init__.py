"""Synthetic look-alikes of the eight datasets' download layouts (for tests and demos).

:mod:`mcnn.simulate.lookalikes.render` draws fields of cells (structures per channel, from the
primitives of :mod:`mcnn.simulate.draw`), :mod:`mcnn.simulate.lookalikes.looks` holds the looks
per class and the planted dose response; each dataset's module writes its files in the real layout,
and :mod:`mcnn.simulate.lookalikes.registry` finds the writer by dataset name.
"""
