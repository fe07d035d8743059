"""The atlas.toml of a tiny project for command-level tests: the demo model with random
weights on 40 synthetic 64 px images, CPU and one thread, cache in ``cache/``."""

TINY_PROJECT_CONFIG = """
[site]
title = "Test"
site_url = "https://example.org/"

[paths]
cache = "cache"

[compute]
device = "cpu"
threads = 1

[models.demo]
weights = "random"

[datasets.shapes]
kind = "synthetic"
count = 40
size = 64
"""
