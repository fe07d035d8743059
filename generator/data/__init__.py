"""Image data: the :class:`~generator.data.base.ImageSource` contract and its sources.

base.py         ImageSource, BadImage, LoadReport, ImageDataWarning
decode.py       one file -> RGB uint8, converting odd modes, rejecting bad files with a reason
folder.py       FolderSource: image folders, flat or one subfolder per class
imagenette.py   Imagenette through torchvision (downloaded when online)
procedural.py   vectorised drawing primitives (hash, sines, signed distances, textures)
world.py        the synthetic world's classes and render_batch
synthetic.py    SyntheticWorld (the world as an ImageSource) and preview()
sampling.py     sample_indices: deterministic samples by seed
loader.py       iterate_batches: resized, parallel, on a device (imports torch)
registry.py     [datasets.<name>] tables -> DatasetSpec -> open_dataset

Importing this package imports nothing heavy; import the modules you need.
"""
