"""Tests of ganjax.augment against numpy, closed forms, finite differences and draw statistics."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
from jax.test_util import check_grads

from ganjax import augment
from ganjax import errors

KEY = jax.random.PRNGKey(0)
# Compilation dominates the run time. Most tests go through these jitted functions (one
# compilation per policy and image shape; p and first_index are traced), and the eager calls
# use one image shape, SHAPE, so that they share the compiled primitives.
APPLY = jax.jit(augment.apply, static_argnums=0)
WARP = jax.jit(augment.affine_warp)
SHAPE = (8, 8, 8, 3)
ALL_NAMES = sorted(augment.OPS) + sorted(augment.PRESETS)
# Operations whose every draw at p = 1 changes an image; the others can draw the identity (no
# flip, k = 0, a zero shift).
ALWAYS_CHANGING = ("color", "cutout", "scale", "rotate", "aniso", "xfrac", "brightness",
                   "contrast", "hue", "saturation")


def random_images(seed, shape=SHAPE):
  return jnp.asarray(np.random.default_rng(seed).uniform(-1.0, 1.0, shape), jnp.float32)


def distinct_pattern(batch, size):
  """One-channel images whose pixels all differ and none is 0 (so a shift is recognisable)."""
  values = 0.1 + np.arange(size * size, dtype=np.float32).reshape(size, size, 1) / size**2
  return np.broadcast_to(values, (batch, size, size, 1)).copy()


def numpy_shift(image, dy, dx, mode):
  """output[y, x] = image[y - dy, x - dx], the outside filled by np.pad's `mode`."""
  height, width = image.shape[:2]
  margin = max(height, width)
  padded = np.pad(image, ((margin, margin), (margin, margin), (0, 0)), mode=mode)
  return padded[margin - dy:margin - dy + height, margin - dx:margin - dx + width]


def drawn_shifts(inputs, outputs, limit, mode):
  """The (dy, dx) in [-limit, limit]^2 that turns each input into its output; exactly one."""
  shifts = []
  for image, result in zip(inputs, np.asarray(outputs)):
    matches = [(dy, dx) for dy in range(-limit, limit + 1) for dx in range(-limit, limit + 1)
               if np.array_equal(numpy_shift(image, dy, dx, mode), result)]
    assert len(matches) == 1, matches
    shifts.append(matches[0])
  return np.array(shifts)


# Identity at p = 0 and exact resampling.


@pytest.mark.parametrize("name", ALL_NAMES)
def test_p_zero_returns_the_input_bit_for_bit_under_jit(name):
  images = random_images(1)
  # p is traced: the Bernoulli draws decide at run time.
  np.testing.assert_array_equal(APPLY(name, images, KEY, 0.0), images)


def test_p_zero_returns_the_input_bit_for_bit_eagerly():
  images = random_images(1)
  for name in augment.OPS:  # the public function of each operation
    np.testing.assert_array_equal(getattr(augment, name)(images, KEY, 0.0), images)
  for policy in list(augment.PRESETS) + ["color,translation,cutout"]:
    np.testing.assert_array_equal(augment.apply(policy, images, KEY, 0.0), images)
  # Rectangular greyscale images (hue and saturation skipped, as for greyscale in the reference).
  rectangular = random_images(2, (2, 6, 10, 1))
  policy = "color,translation,cutout,xflip,xint,geom,adacolor"
  np.testing.assert_array_equal(APPLY(policy, rectangular, KEY, 0.0), rectangular)
  assert not np.array_equal(APPLY(policy, rectangular, KEY, 1.0), rectangular)


def test_each_public_operation_is_apply_of_its_name():
  images = random_images(3)
  for name in augment.OPS:
    np.testing.assert_array_equal(getattr(augment, name)(images, KEY, 1.0, 3),
                                  augment.apply(name, images, KEY, 1.0, first_index=3))


def test_empty_policy_returns_the_input():
  images = random_images(4)
  np.testing.assert_array_equal(augment.apply("", images, KEY, 1.0), images)
  np.testing.assert_array_equal(augment.apply((), images, KEY, 1.0), images)


def test_affine_warp_with_the_identity_is_exact():
  images = random_images(5, (2, 7, 9, 3))  # odd and even sizes, negative values
  np.testing.assert_array_equal(WARP(images, jnp.eye(3)), images)
  np.testing.assert_array_equal(WARP(images, jnp.stack([jnp.eye(3)] * 2)), images)  # per example


def keys_kernel(x, a=-0.5):
  """Keys' cubic convolution kernel W(x), as in Keys 1981, equation (15)."""
  x = np.abs(x)
  return np.where(x <= 1, (a + 2) * x**3 - (a + 3) * x**2 + 1,
                  np.where(x < 2, a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a, 0.0))


def test_cubic_weights_are_keys_kernel_and_exactly_one_tap_at_integers():
  weights = np.asarray(augment._cubic_weights(jnp.zeros((3,), jnp.float32)))
  np.testing.assert_array_equal(weights, np.tile([0.0, 1.0, 0.0, 0.0], (3, 1)))
  offsets = np.linspace(0.0, 0.99, 12)
  expected = keys_kernel(offsets[:, None] - np.arange(-1, 3)[None, :])  # distances to the taps
  np.testing.assert_allclose(augment._cubic_weights(jnp.asarray(offsets, jnp.float32)), expected,
                             atol=1e-6)  # float32 polynomials


# Pixel shifts, flips and quarter turns.


@pytest.mark.parametrize("mode", ["zeros", "reflect"])
def test_shift_moves_the_content_by_whole_pixels(mode):
  image = distinct_pattern(1, 8)[0]
  for dy, dx in [(0, 0), (2, -1), (-3, 3), (1, 0)]:
    expected = numpy_shift(image, dy, dx, "constant" if mode == "zeros" else "reflect")
    np.testing.assert_array_equal(augment._shift(jnp.asarray(image), dy, dx, mode), expected)


@pytest.mark.parametrize("name, limit, fill", [
    ("translation", int(16 * 0.125 + 0.5), "constant"),  # DiffAugment: U{-2..2}, zeros
    ("xint", round(0.125 * 16), "reflect"),  # ADA: round(U[-0.125, 0.125] * 16), reflected
])
def test_integer_translations_cover_the_reference_range(name, limit, fill):
  images = distinct_pattern(48, 16)
  shifts = drawn_shifts(images, APPLY(name, images, KEY, 1.0), limit, fill)
  for axis in range(2):
    np.testing.assert_array_equal(np.unique(shifts[:, axis]), np.arange(-limit, limit + 1))


def test_cutout_zeroes_one_clipped_square_per_example():
  size, length = 16, 8  # DiffAugment: int(16 * 0.5 + 0.5)
  images = np.ones((32, size, size, 1), np.float32)
  holes = np.asarray(APPLY("cutout", images, KEY, 1.0))[..., 0] == 0.0
  starts = []
  for hole in holes:
    rows, cols = np.flatnonzero(hole.any(axis=1)), np.flatnonzero(hole.any(axis=0))
    np.testing.assert_array_equal(hole, np.outer(hole.any(axis=1), hole.any(axis=0)))
    for band in (rows, cols):
      # A contiguous band of the square, clipped: offset in 0..16, start = offset - 4.
      np.testing.assert_array_equal(band, np.arange(band[0], band[-1] + 1))
      assert length // 2 <= band.size <= length
      assert band.size == length or band[0] == 0 or band[-1] == size - 1
    starts.append(rows[0])
  assert len(set(starts)) > 4  # the offsets vary


def test_rotate90_four_times_and_xflip_twice_are_the_identity():
  images = random_images(6, (32, 8, 8, 3))
  quarter = APPLY("rotate90", images, KEY, 1.0)
  rotated = images
  for _ in range(4):  # the same key draws the same k for each example every time
    rotated = APPLY("rotate90", rotated, KEY, 1.0)
  np.testing.assert_array_equal(rotated, images)
  turns = [[k for k in range(4) if np.array_equal(np.rot90(x, k), y)]
           for x, y in zip(np.asarray(images), np.asarray(quarter))]
  assert all(len(k) == 1 for k in turns)
  assert sorted({k[0] for k in turns}) == [0, 1, 2, 3]

  flipped = APPLY("xflip", images, KEY, 1.0)
  np.testing.assert_array_equal(APPLY("xflip", flipped, KEY, 1.0), images)
  was_flipped = [np.array_equal(y, x[:, ::-1]) for x, y in zip(np.asarray(images), flipped)]
  kept = [np.array_equal(y, x) for x, y in zip(np.asarray(images), flipped)]
  assert all(a != b for a, b in zip(was_flipped, kept))
  assert 0 < sum(was_flipped) < len(images)  # each flips with probability 1/2 when it fires


# Affine warps against numpy.


def test_affine_warp_of_integer_translations_and_quarter_turns_copies_pixels():
  images = random_images(7)
  for tx, ty in [(2.0, -1.0), (-3.0, 0.0)]:
    # G_inv = translate(tx, ty): output[y, x] = input[y + ty, x + tx], reflected outside.
    matrix = jnp.array([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]])
    expected = [numpy_shift(x, -int(ty), -int(tx), "reflect") for x in np.asarray(images)]
    np.testing.assert_array_equal(WARP(images, matrix), expected)
  # x_in = -y_out, y_in = x_out: output[i, j] = input[j, n - 1 - i], which is np.rot90.
  quarter_turn = jnp.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
  np.testing.assert_array_equal(WARP(images, quarter_turn),
                                np.rot90(np.asarray(images), 1, axes=(1, 2)))


def test_affine_warp_reproduces_a_linear_ramp_in_the_interior():
  size = 16
  centre = (size - 1) / 2
  ramp = lambda x, y: 0.03 * x - 0.05 * y + 0.2  # of centred coordinates
  y, x = np.mgrid[0:size, 0:size] - centre
  image = ramp(x, y)[None, :, :, None].astype(np.float32)
  angle, zoom = 0.5, 1.5
  matrix = np.array([[np.cos(angle), -np.sin(angle), 0.7],
                     [np.sin(angle), np.cos(angle), -0.4],
                     [0.0, 0.0, 1.0]])
  matrix[:2, :2] /= zoom  # G_inv of a zoom in by 1.5 after a rotation
  warped = np.asarray(WARP(image, jnp.asarray(matrix, jnp.float32)))[0, :, :, 0]
  x_in = matrix[0, 0] * x + matrix[0, 1] * y + matrix[0, 2]
  y_in = matrix[1, 0] * x + matrix[1, 1] * y + matrix[1, 2]
  # Keys' kernel reproduces linear functions exactly where all 4x4 taps lie inside the image.
  interior = (np.abs(x_in) <= centre - 2) & (np.abs(y_in) <= centre - 2)
  assert interior.sum() > 50
  np.testing.assert_allclose(warped[interior], ramp(x_in, y_in)[interior], atol=1e-5)  # float32


def test_a_geom_group_is_one_warp_by_the_reference_composition():
  # The parameters re-derived from the documented draws (example i: fold_in(KEY, i); operation
  # j: U[0, 1) draws from fold_in(that key, j); u[0] < p fires; normals by the inverse CDF),
  # composed as ADA's reference does, G_inv = S^-1 R(theta1) A^-1 R(theta2) T^-1, in float64.
  images = random_images(15)
  height, width = SHAPE[1:3]
  rotation = lambda t: np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
  matrices = []
  for i in range(SHAPE[0]):
    example_key = jax.random.fold_in(KEY, i)
    u = [np.asarray(jax.random.uniform(jax.random.fold_in(example_key, j),
                                       (augment.OPS[name].draws,)), np.float64)
         for j, name in enumerate(augment.PRESETS["geom"])]
    s = 2.0 ** (0.2 * scipy.special.ndtri(u[0][1]))
    theta1, theta2 = (2.0 * u[1][1] - 1.0) * np.pi, (2.0 * u[1][3] - 1.0) * np.pi
    a = 2.0 ** (0.2 * scipy.special.ndtri(u[2][1]))
    tx, ty = 0.125 * scipy.special.ndtri(u[3][1:])
    matrices.append(np.diag([1 / s, 1 / s, 1.0]) @ rotation(theta1) @ np.diag([1 / a, a, 1.0])
                    @ rotation(theta2) @ np.array([[1, 0, -tx * width], [0, 1, -ty * height],
                                                   [0, 0, 1]]))
  expected = WARP(images, jnp.asarray(np.stack(matrices), jnp.float32))
  # At p = 1 everything fires. The float32 and float64 matrices differ by rounding, which moves
  # the sampling points by about 1e-6 pixels.
  np.testing.assert_allclose(APPLY("geom", images, KEY, 1.0), expected, atol=1e-4)


# Colour matrices against the formulas, written out in numpy.


def numpy_colour(rgb, b, c, i, theta, s):
  """ADA's colour steps on rgb rows: brightness, contrast, luma flip, hue, saturation."""
  axis = np.ones(3) / np.sqrt(3.0)
  x = (rgb + b) * c
  x = x - 2.0 * i * np.outer(x @ axis, axis)  # Householder reflection of the luma
  x = (np.cos(theta) * x + np.sin(theta) * np.cross(axis, x)  # Rodrigues about the luma axis
       + (1.0 - np.cos(theta)) * np.outer(x @ axis, axis))
  luma = np.outer(x @ axis, axis)
  return luma + s * (x - luma)


def test_color_matrix_matches_the_formulas():
  rng = np.random.default_rng(8)
  parameters = [(0.15, 1.3, 0.0, 0.4, 0.6), (-0.2, 0.7, 1.0, -2.5, 1.8), (0.0, 1.0, 1.0, 0.0, 1.0)]
  images = rng.uniform(-1.0, 1.0, (3, 4, 5, 3)).astype(np.float32)
  matrices = augment.color_matrix(*(jnp.array(column, jnp.float32) for column in zip(*parameters)))
  assert matrices.shape == (3, 4, 4)
  np.testing.assert_array_equal(matrices[:, 3], np.tile([0.0, 0.0, 0.0, 1.0], (3, 1)))
  recoloured = np.asarray(augment.apply_color_matrix(images, matrices))
  for image, result, values in zip(images, recoloured, parameters):
    expected = numpy_colour(image.reshape(-1, 3).astype(np.float64), *values)
    np.testing.assert_allclose(result.reshape(-1, 3), expected, atol=2e-5)  # float32 matrices
  np.testing.assert_array_equal(augment.color_matrix(), np.eye(4))


def test_color_matrix_on_greyscale_follows_the_reference():
  # The mean of the rgb rows: hue and saturation keep grey grey, a luma flip negates it.
  images = np.random.default_rng(9).uniform(-1.0, 1.0, (2, 3, 3, 1)).astype(np.float32)
  b, c, i = 0.1, 1.7, 1.0
  matrix = augment.color_matrix(b, c, i, theta=1.1, s=0.3)
  np.testing.assert_allclose(augment.apply_color_matrix(images, matrix),
                             (1.0 - 2.0 * i) * c * (images + b), atol=1e-5)  # float32


# Gradients.


@pytest.mark.parametrize("name", list(augment.OPS) + ["bgc"])
def test_gradients_match_finite_differences(name):
  n, h, w, c = np.meshgrid(*(np.arange(size) for size in SHAPE), indexing="ij")
  images = jnp.asarray(0.8 * np.sin(0.7 * h + 1.3 * w + c + 0.9 * n), jnp.float32)  # smooth
  probability = 0.5 if name == "bgc" else 1.0
  f = lambda x: augment.apply(name, x, KEY, probability)
  # For fixed randomness every operation is affine in the images, so central differences are
  # exact up to float32 rounding (about 1e-7 / eps per element).
  check_grads(f, (images,), order=1, modes=["rev"], eps=1e-2, atol=2e-3, rtol=2e-3)
  assert np.all(np.isfinite(jax.grad(lambda x: jnp.sum(f(x) ** 2))(images)))


# Randomness.


@pytest.mark.parametrize("policy", ["bgc", "color,translation,cutout"])
def test_a_batch_split_over_devices_draws_the_same_numbers(policy):
  # Four devices with two examples each, first_index = device * 2: the same computation per
  # example, so the same bits.
  images = random_images(10)
  whole = APPLY(policy, images, KEY, 0.7)
  for first in range(0, 8, 2):
    np.testing.assert_array_equal(APPLY(policy, images[first:first + 2], KEY, 0.7, first),
                                  whole[first:first + 2])
  assert not np.array_equal(whole, images)


def test_examples_and_operations_draw_from_their_own_keys():
  images = np.zeros(SHAPE, np.float32)
  # The same image at two batch positions gets different brightness offsets ...
  out = augment.brightness(images, KEY, 1.0)
  assert float(out[0, 0, 0, 0]) != float(out[1, 0, 0, 0])
  # ... and the second of two operations does not repeat the first (op j: fold_in(key, j)).
  once = augment.apply("brightness", images, KEY, 1.0)
  twice = augment.apply("brightness,brightness", images, KEY, 1.0)
  assert not np.allclose(twice, 2.0 * once)


# Parsing.


def test_parse_expands_presets_and_tolerates_whitespace():
  assert augment.parse("") == ()
  assert augment.parse("  ") == ()
  assert augment.parse("color,translation,cutout") == ("color", "translation", "cutout")
  assert augment.parse(" blit , cutout") == ("xflip", "rotate90", "xint", "cutout")
  assert augment.parse("bgc") == (augment.PRESETS["blit"] + augment.PRESETS["geom"]
                                  + augment.PRESETS["adacolor"])
  assert augment.PRESETS["bg"] == ("xflip", "rotate90", "xint", "scale", "rotate", "aniso",
                                   "xfrac")
  for preset in augment.PRESETS.values():
    assert all(name in augment.OPS for name in preset)


@pytest.mark.parametrize("policy", ["colour", "bgc,flip", "color,,cutout"])
def test_unknown_names_raise_config_error_naming_the_field(policy):
  with pytest.raises(errors.ConfigError, match=r"augment\.policy.*valid names:.*bgc"):
    augment.parse(policy)
  with pytest.raises(errors.ConfigError, match=r"augment\.policy"):
    augment.apply(policy, random_images(11), KEY, 1.0)
  with pytest.raises(errors.ConfigError, match=r"\(regularizer\.cr_policy\)"):
    augment.parse(policy, "regularizer.cr_policy")


def test_unusable_image_shapes_raise_config_error():
  with pytest.raises(errors.ConfigError, match="square"):
    augment.apply("rotate90", random_images(12, (1, 4, 6, 3)), KEY, 1.0)
  with pytest.raises(errors.ConfigError, match="channels"):
    augment.apply("adacolor", random_images(12, (1, 4, 4, 2)), KEY, 1.0)


# At p = 1: the operations act, and their parameters have the reference's distributions.


@pytest.mark.parametrize("name", sorted(augment.OPS))
def test_p_one_changes_images(name):
  images = random_images(13, SHAPE)
  out = np.asarray(APPLY(name, images, KEY, 1.0))
  changed = [not np.array_equal(x, y) for x, y in zip(np.asarray(images), out)]
  assert all(changed) if name in ALWAYS_CHANGING else any(changed), changed


def test_colour_parameters_have_the_reference_distributions():
  count = 512
  # Greyscale: brightness adds b to 0, contrast multiplies 1 by c.
  b = np.asarray(APPLY("brightness", np.zeros((count, 1, 1, 1), np.float32), KEY, 1.0)).ravel()
  c = np.asarray(APPLY("contrast", np.ones((count, 1, 1, 1), np.float32), KEY, 1.0)).ravel()
  # A pixel of luma 0 and chroma norm sqrt(2): saturation scales it by s, hue rotates it.
  pixel = np.broadcast_to(np.array([1.0, 0.0, -1.0], np.float32), (count, 1, 1, 3))
  s = np.asarray(APPLY("saturation", pixel, KEY, 1.0))[:, 0, 0, 0]
  rotated = np.asarray(APPLY("hue", pixel, KEY, 1.0))[:, 0, 0]
  # Standard errors of a standard deviation from 512 draws are 3% of it: 10% bounds are 3 SE.
  assert abs(np.mean(b)) < 0.03 and 0.18 < np.std(b) < 0.22
  assert 0.45 < np.std(np.log2(c)) < 0.55
  assert 0.9 < np.std(np.log2(s)) < 1.1
  np.testing.assert_allclose(rotated.sum(axis=-1), 0.0, atol=1e-5)  # luma kept
  np.testing.assert_allclose(np.linalg.norm(rotated, axis=-1), np.sqrt(2.0), rtol=1e-5)
  # The angle of the rotation about the luma axis, from the original chroma (1, 0, -1).
  axis = np.ones(3) / np.sqrt(3.0)
  original = np.array([1.0, 0.0, -1.0])
  angles = np.arctan2(np.cross(original, rotated) @ axis, rotated @ original)
  assert angles.min() < -2.8 and angles.max() > 2.8
  assert abs(np.mean(np.abs(angles)) - np.pi / 2) < 0.15  # U[-pi, pi]: SE of the mean 0.04


def test_geometric_parameters_have_the_reference_distributions():
  count, size = 2048, 32

  def draw(name):  # the G_inv factors from `count` draws of u ~ U[0, 1)
    u = jax.random.uniform(KEY, (count, augment.OPS[name].draws))
    per_example = augment.OPS[name].per_example
    return jax.jit(jax.vmap(lambda u: per_example(u, 1.0, size, size)[0]))(u)

  scale, = draw("scale")
  aniso, = draw("aniso")
  shift, = draw("xfrac")
  first, second = draw("rotate")
  # Standard errors of these standard deviations are 1.6%: 7% bounds are 4 SE.
  assert 0.186 < np.std(-np.log2(scale[:, 0, 0])) < 0.214  # G_inv = diag(1/s, 1/s)
  np.testing.assert_array_equal(scale[:, 0, 0], scale[:, 1, 1])
  assert 0.186 < np.std(-np.log2(aniso[:, 0, 0])) < 0.214  # G_inv = diag(1/s, s)
  np.testing.assert_allclose(aniso[:, 0, 0] * aniso[:, 1, 1], 1.0, rtol=1e-6)
  for axis in range(2):
    assert 0.93 * 0.125 * size < np.std(shift[:, axis, 2]) < 1.07 * 0.125 * size
  for rotation in (first, second):
    angles = np.arctan2(rotation[:, 1, 0], rotation[:, 0, 0])
    assert 0.93 * np.pi / 2 < np.mean(np.abs(angles)) < 1.07 * np.pi / 2  # U[-pi, pi]


@pytest.mark.parametrize("name, probability", [("brightness", 0.3), ("rotate", 0.5)])
def test_each_example_is_augmented_with_probability_p(name, probability):
  count = 512
  images = random_images(14, (count, 4, 4, 3))
  out = np.asarray(APPLY(name, images, KEY, probability))
  changed = np.mean(np.any(out != np.asarray(images), axis=(1, 2, 3)))
  # Standard error about 0.022; `rotate` firing each rotation with p instead of
  # 1 - sqrt(1 - p) would give 0.75.
  assert abs(changed - probability) < 0.08, changed
