"""Fixtures for registry tests."""

from __future__ import annotations
