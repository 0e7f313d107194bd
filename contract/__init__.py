"""The contract every part of the tagger shares: names, limits, layouts and places.

This package is the leaf of the import graph. Everything may import it (the online side,
the module files, the data import, the pipeline, the runners); it imports nothing of the
project and nothing outside the standard library, so the app can use it without the
training stack. The import rules are written down in docs/imports.md and checked by
tests/test_import_rules.py.
"""
