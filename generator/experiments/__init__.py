"""Patch experiments (METHOD.md 6): a patch pasted on images of one class, counted as flips.

- :mod:`~generator.experiments.spec` -- an ``[experiment.<id>]`` table, checked and typed;
- :mod:`~generator.experiments.patch` -- the patch: fitted, placed, pasted, or uniform noise;
- :mod:`~generator.experiments.measure` -- a pair measured: drawn, classified, patched in batches;
- :mod:`~generator.experiments.run` -- one experiment run over a data set's images (its patched
  batches on Ray workers with ``[compute] cluster``, :mod:`generator.cluster.experiments`);
- :mod:`~generator.experiments.results` -- flip statistics and the results format the site reads.
"""
