"""Target vision-language models (VLPs) behind one small interface."""

from psic.vlp.loading import load_image_tower, load_vlp
from psic.vlp.model import VisionLanguageModel

__all__ = ["VisionLanguageModel", "load_image_tower", "load_vlp"]
