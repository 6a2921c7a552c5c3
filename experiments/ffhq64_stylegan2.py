"""FFHQ at 64x64 with StyleGAN2, config F shrunk to 64x64 (needs the images in a folder).

  python -m ganjax.main --config=experiments/ffhq64_stylegan2.py --workdir=runs/ffhq64_stylegan2
  python -m ganjax.main --config=experiments/ffhq64_stylegan2.py:tiny --workdir=runs/ffhq64_stylegan2_tiny

The recipe of experiments/celeba64_stylegan2.py (StyleGAN2's config F at 64x64, every setting
and its source in `configs.stylegan2_config_f`) on FFHQ (Karras, Laine and Aila 2019).
FFHQ's 70,000 aligned faces (github.com/NVlabs/ffhq-dataset) are read from an image folder,
~/data/ffhq/train/all/*.png by default (--config.data.folder=<dir>; `ganjax.data.images`),
and resized to 64x64 (area-averaging bilinear).
ADA: --config.augment.policy=bgc --config.augment.target=0.6.
"""
import ml_collections

from ganjax import configs
from ganjax import data
from ganjax import image_quality


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  configs.check_argument(arg, __file__, valid=("tiny",))
  faces = data.image_config("folder", image_size=64, folder="~/data/ffhq")
  config = configs.stylegan2_config_f(faces, resolution=64, batch_size=32, kimg=25_000)
  config.eval = image_quality.eval_config(metrics="fid,kid", features="inception", every=10_000,
                                          best="fid")
  if arg == "tiny":
    configs.shrink_stylegan2(config)
  return config
