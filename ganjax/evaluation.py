"""The image-quality library under its earlier name: `ganjax.image_quality` (this name stays for
one release; `ganjax.evaluate` is the command)."""
import sys

from ganjax import image_quality

sys.modules[__name__] = image_quality
