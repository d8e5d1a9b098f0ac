"""Helpers shared by test modules (not fixtures, not factories): import them from here,
never from a conftest or another test module."""
