"""Feature visualization as a small library (compute half: imports torch).

- ``objectives``: what to maximize, as values with arithmetic (neuron, channel, direction,
  the atlas objective, the border penalty);
- ``param``: image parameterizations, ``(batch, h, w, ...) -> (params, render)``;
- ``transform``: random transforms, ``(images, generator) -> images``, and the recipe's list;
- ``render``: the optimization loop, best of k tries, truncated forward, explicit randomness.

Typical use (METHOD.md 5)::

    from generator.optvis import objectives as obj, render

    goal = obj.atlas_direction("mixed4c", directions, whitening=S) + obj.border_penalty()
    icons = render.render(model, goal, steps=1024, tries=4, seed=0).icons()
"""
