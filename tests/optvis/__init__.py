"""Tests of generator/optvis."""
