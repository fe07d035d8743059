"""Icons: one feature visualization per kept cell of an atlas's grids (METHOD.md 5).

The render stage of the compute pipeline, between the grids (:mod:`generator.atlas.grid`) and
the composed atlas (:mod:`generator.atlas.compose`): :mod:`.render_icons` (the resumable,
batched render of every cell), :mod:`.settings` (``[atlas.<id>.render]``: presets, keys,
validation), :mod:`.objective` (the atlas objective, its calibration, icon fidelity),
:mod:`.batching` (batch sizes), :mod:`.lean` (the model copy that renders), :mod:`.store` (the
``Icons`` artifact and the saved batches of a run). The optimization itself is the
:mod:`generator.optvis` library.
"""
