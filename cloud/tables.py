"""Imports every module that defines tables, so the schema is complete wherever it is built.

Each area adds its own line here (and only here) when it adds a table module.
"""
