"""Training's name for the shared data sets, which live in :mod:`psic.datasets` so that
:mod:`psic.eval` can read them without importing :mod:`psic.train`."""

from psic.datasets import IMAGE_SUFFIXES, CaptionedImages, image_folder, load_square, read_captioned, split

__all__ = ["IMAGE_SUFFIXES", "CaptionedImages", "image_folder", "load_square", "read_captioned", "split"]
