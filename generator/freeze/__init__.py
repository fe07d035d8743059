"""Frozen results: what the site needs of computed atlases and experiments, committed to git.

Atlases are computed where there is a GPU and published where there is not (GitHub Actions, a
laptop). ``atlas freeze`` writes, for each computed atlas and patch experiment, exactly the
files the site publishes (level images, cells, dataset examples, heat maps, tour-query arrays,
experiment results; no activations) into ``_freeze/`` (``[paths] freeze``), with a manifest
(``freeze.json``) holding the key of everything that produced them and the digest of every
file. Anchor: Quarto's ``_freeze/``.

- :mod:`~generator.freeze.recipe` -- the *recipe* of a result: what can be known of its inputs
  without torch (the spec as parsed, the model and data set as declared, the code's stage
  versions), so a machine without the compute engine can tell a frozen entry is stale;
- :mod:`~generator.freeze.store` -- the frozen folder: write, read, verify, copy into the cache;
- :mod:`~generator.freeze.commands` -- ``atlas freeze``.

A build takes each result from the cache first, then from the frozen folder, then computes
(:func:`generator.site.atlases.computed_bundle`, :func:`generator.site.build_experiments.
compute_experiments`).
"""
