"""The fenced blocks of the site's Markdown, each registered with :class:`generator.site.mdext.PageMarkdown`.

- :mod:`~generator.site.blocks.blockyaml` -- the blocks' YAML, with the source line of every key;
- :mod:`~generator.site.blocks.embeds` -- ```` ```atlas ````: one atlas viewer;
- :mod:`~generator.site.blocks.tour`, :mod:`~generator.site.blocks.tourquery` and
  :mod:`~generator.site.blocks.annotations` -- an embed's guided tour, its stops as data
  queries, and the tour as W3C Web Annotations;
- :mod:`~generator.site.blocks.layers_block` -- ```` ```atlas-layers ````: layers side by side;
- :mod:`~generator.site.blocks.patch_results_block` -- ```` ```patch-results ````.
"""
