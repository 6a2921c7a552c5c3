"""CelebA at 64x64 with StyleGAN2, config F shrunk to 64x64 (needs TFDS 'celeb_a' prepared).

  python -m ganjax.main --config=experiments/celeba64_stylegan2.py --workdir=runs/celeba64_stylegan2
  python -m ganjax.main --config=experiments/celeba64_stylegan2.py:tiny --workdir=runs/celeba64_stylegan2_tiny

StyleGAN2's config F (Karras et al. 2020, "Analyzing and Improving the Image Quality of
StyleGAN") as NVlabs/stylegan2-ada-pytorch trains it (`--cfg=stylegan2`), at 64x64: 512
channels, 8 mapping layers, style mixing 0.9, lazy R1 and path-length regularisation, Adam 0.002
(0, 0.99), batch 32, an EMA half-life of 10 kimg, 25,000 kimg; R1's gamma by the ADA code's rule
0.0002 r^2 / batch = 0.0256 (`configs.stylegan2_config_f` gives every setting and its source).
The faces are the aligned CelebA images, centre-cropped to 108x108 and resized to 64x64
(`ganjax.data.images`), as for the DCGAN.
ADA: --config.augment.policy=bgc --config.augment.target=0.6.
"""
import ml_collections

from ganjax import configs
from ganjax import data
from ganjax import image_quality


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  configs.check_argument(arg, __file__, valid=("tiny",))
  faces = data.image_config("celeb_a", image_size=64, crop_size=108)
  config = configs.stylegan2_config_f(faces, resolution=64, batch_size=32, kimg=25_000)
  config.eval = image_quality.eval_config(metrics="fid,kid", features="inception", every=10_000,
                                          best="fid")
  if arg == "tiny":
    configs.shrink_stylegan2(config)
  return config
