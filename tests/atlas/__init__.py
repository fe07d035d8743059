"""Tests of the compute stages: collect, attribute, layout, grid, spec, pipeline."""
