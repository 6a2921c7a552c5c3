"""Pictures of samples: image grids, and samples over the true density for toy data."""
from __future__ import annotations

import pathlib

import numpy as np


def image_grid(images: np.ndarray, columns: int | None = None) -> np.ndarray:
  """Tiles images of shape (N, H, W, C) in [-1, 1] into one uint8 (rows*H, columns*W, C) image."""
  images = np.clip((np.asarray(images, np.float32) + 1.0) * 127.5, 0, 255).astype(np.uint8)
  num, height, width, channels = images.shape
  columns = columns or int(np.ceil(np.sqrt(num)))
  rows = int(np.ceil(num / columns))
  grid = np.zeros((rows * height, columns * width, channels), np.uint8)
  for index, image in enumerate(images):
    row, column = divmod(index, columns)
    grid[row * height:(row + 1) * height, column * width:(column + 1) * width] = image
  return grid


def _pyplot():
  import matplotlib
  matplotlib.use("Agg")
  from matplotlib import pyplot
  return pyplot


def save_image_grid(path: str | pathlib.Path, images: np.ndarray,
                    columns: int | None = None) -> np.ndarray:
  """Writes `image_grid(images, columns)` as a PNG and returns the grid."""
  from PIL import Image
  grid = image_grid(images, columns)
  Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(path)
  return grid


def save_toy_samples(path: str | pathlib.Path, samples: np.ndarray, distribution,
                     title: str = "", labels: np.ndarray | None = None) -> None:
  """Samples of a 1-D or 2-D toy distribution against its exact density, as a PNG; with the
  labels they were generated for, each class in its own colour (and, in 2-D, each mode marked
  with its class in that colour)."""
  plt = _pyplot()
  samples = np.asarray(samples)
  means = np.asarray(distribution.means)
  low, high = means.min(0) - 1.0 - 3 * max(distribution.stds), means.max(0) + 1.0 + 3 * max(
      distribution.stds)
  figure, axes = plt.subplots(figsize=(5, 5) if distribution.dim == 2 else (6, 3.5))
  if distribution.dim == 1:
    xs = np.linspace(low[0], high[0], 1000)
    axes.plot(xs, np.asarray(distribution.prob(xs[:, None])), color="tab:blue", label="p_data")
    if labels is None:
      axes.hist(samples[:, 0], bins=100, range=(low[0], high[0]), density=True,
                color="tab:red", alpha=0.5, label="samples")
    else:
      for k in range(len(means)):
        axes.hist(samples[labels == k, 0], bins=100, range=(low[0], high[0]), density=True,
                  color=_class_colour(k), alpha=0.5, label=f"class {k}")
    axes.legend()
  else:
    xs, ys = np.meshgrid(np.linspace(low[0], high[0], 300), np.linspace(low[1], high[1], 300))
    points = np.stack([xs, ys], -1).reshape(-1, 2)
    log_density = np.asarray(distribution.log_prob(points)).reshape(xs.shape)
    axes.contour(xs, ys, np.maximum(log_density, log_density.max() - 12), levels=8, cmap="Blues")
    if labels is None:
      axes.scatter(samples[:, 0], samples[:, 1], s=2, c="tab:red", alpha=0.5)
    else:
      colours = [_class_colour(k) for k in np.asarray(labels)]
      axes.scatter(samples[:, 0], samples[:, 1], s=2, c=colours, alpha=0.5)
      for k, mean in enumerate(means):
        axes.annotate(str(k), mean, xytext=(6, 6), textcoords="offset points",
                      color=_class_colour(k), fontsize=9, weight="bold")
    axes.set_xlim(low[0], high[0])
    axes.set_ylim(low[1], high[1])
    axes.set_aspect("equal")
  if title:
    axes.set_title(title)
  figure.savefig(path, dpi=100, bbox_inches="tight")
  plt.close(figure)


def _class_colour(k: int):
  from matplotlib import colormaps
  return colormaps["tab10" if k < 10 else "tab20"](k % 20)


def save_samples(path: str | pathlib.Path, samples: np.ndarray, distribution=None,
                 title: str = "", labels: np.ndarray | None = None,
                 columns: int | None = None) -> None:
  """Images as a grid (`columns` wide: a class grid of a conditional generator has one row per
  class); toy samples over their density (when the distribution is known), coloured by their
  labels when given."""
  samples = np.asarray(samples)
  if samples.ndim == 4:
    save_image_grid(path, samples, columns)
  elif distribution is not None and distribution.dim in (1, 2):
    save_toy_samples(path, samples, distribution, title,
                     None if labels is None else np.asarray(labels))
  else:
    raise ValueError(f"no picture for samples of shape {samples.shape}")
