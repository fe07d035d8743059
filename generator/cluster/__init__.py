"""Spreading compute work over a Ray cluster (the optional ``[cluster]`` extra).

:mod:`.session` turns ``[compute] cluster`` into a :class:`~.session.ClusterPlan` (no Ray import)
and starts or joins Ray when work is first sent; :mod:`.pool` runs a stage's units on Ray
actors (one model load per worker, retries, the progress line) while this process keeps the
cache: :mod:`.collect` collects activations and attributions chunk by chunk, :mod:`.render`
renders an atlas's icon batches, :mod:`.examples` reads and crops the dataset examples' images
a group at a time, :mod:`.experiments` runs a patch experiment's patched batches. Nothing here
is imported when ``cluster = "none"``.
"""
