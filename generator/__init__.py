"""atlas: a static-site generator for activation atlas publications.

The pipeline, top to bottom (see README.md):

    models/ + data/  ->  atlas/ (collect -> attribute -> layout -> grid -> render -> compose)
                     ->  tiles.py (Deep Zoom pyramids)  ->  site/ (Markdown articles -> site/)

The site half imports no torch; the compute half imports it only where it is used.
"""

__version__ = "0.1.0"
