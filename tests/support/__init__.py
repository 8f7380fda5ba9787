"""Helpers shared by the tests (the tests folder is on sys.path: ``from support.x import y``)."""
