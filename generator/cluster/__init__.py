"""Spreading compute work over a Ray cluster (the optional ``[cluster]`` extra).

:mod:`.session` turns ``[compute] cluster`` into a :class:`~.session.ClusterPlan` (no Ray import)
and starts or joins Ray when work is first sent; :mod:`.render` renders an atlas's icon batches
on Ray workers while this process keeps the cache. Nothing here is imported when
``cluster = "none"``.
"""
