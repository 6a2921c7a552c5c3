"""Regularisers: the discriminator's (critic's) gradient penalties and weight clipping, and
BigGAN's orthogonal regularisation of the generator (`orthogonal_penalty`, a function of the
parameters alone, not of input gradients); for training with little data, consistency
regularisation (`consistency_penalty`: CR and balanced CR), LeCam regularisation
(`lecam_penalty`, with its averages' `ema_update`) and the optimizer correction of lazy
regularisation (`lazy_optimizer_correction`: a penalty every k discriminator updates, StyleGAN2);
and StyleGAN2's path-length regularisation of a style-based generator (`path_lengths`,
`path_length_penalty`).
The update (`ganjax.train`) applies these last ones from the fields of `GANSpec`.

Every penalty is a non-negative scalar that the discriminator's loss adds, scaled by the caller,
and that is minimised with respect to the discriminator's parameters. It is a function of input
gradients, so minimising it differentiates through `jax.grad` (second-order autodiff); all
penalties here support that, and `jax.jit`.

A critic function (`critic_fn`, `disc_fn`) maps a batch of inputs of shape (batch, ...) to
per-example outputs of shape (batch,): logits or critic values. Per-example input gradients are
taken as `jax.grad(lambda x: jnp.sum(critic_fn(x)))(x)`, which is correct only when examples do
not interact inside the critic: no batch normalisation, minibatch discrimination or other
cross-example statistics (which is why WGAN-GP critics use layer normalisation or none).

Input-gradient norms are Euclidean norms over all non-batch axes.

`PENALTIES` registers every penalty a config can name (`penalty.name`) under one signature,
`(disc_fn, real, fake, key) -> scalar`; `penalty(name)` returns it. Adding a penalty is one
function of that signature and one entry there.
"""
import numbers
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from ganjax import errors
from ganjax.errors import ConfigError

CriticFn = Callable[[jax.Array], jax.Array]
# A registered penalty: (disc_fn, real, fake, key) -> the scalar penalty, unweighted.
Penalty = Callable[[CriticFn, jax.Array, jax.Array, jax.Array], jax.Array]


def _input_gradients(critic_fn: CriticFn, inputs: jax.Array) -> jax.Array:
  """Returns grad_x critic_fn(x) for every example, with the shape of `inputs`."""
  return jax.grad(lambda x: jnp.sum(critic_fn(x)))(inputs)


def _per_example_norm(gradients: jax.Array) -> jax.Array:
  """Returns the Euclidean norm of each example's gradient over all non-batch axes.

  The gradient of sqrt(sum g^2) is g / ||g||, which is 0/0 where g is exactly zero (a constant
  critic, saturated units). `optax.safe_norm` with min_norm 0 gives the norm exactly elsewhere
  and a gradient of 0 there, so penalties stay differentiable for any critic.
  """
  flat_gradients = jnp.reshape(gradients, (gradients.shape[0], -1))
  return optax.safe_norm(flat_gradients, 0.0, axis=-1)


def _per_example_uniform(key: jax.Array, inputs: jax.Array) -> jax.Array:
  """Returns U[0, 1] draws of shape (batch, 1, ..., 1), broadcastable against `inputs`."""
  shape = (inputs.shape[0],) + (1,) * (inputs.ndim - 1)
  return jax.random.uniform(key, shape, dtype=inputs.dtype)


def _norm_penalty(norms: jax.Array, target: float, one_sided: bool) -> jax.Array:
  deviation = norms - target
  if one_sided:
    deviation = jnp.maximum(deviation, 0.0)
  return jnp.mean(jnp.square(deviation))


def gradient_penalty(
    critic_fn: CriticFn,
    real: jax.typing.ArrayLike,
    fake: jax.typing.ArrayLike,
    key: jax.Array,
    target: float = 1.0,
    one_sided: bool = False,
) -> jax.Array:
  """WGAN-GP gradient penalty at random interpolates of real and fake examples.

  x_hat = eps * real + (1 - eps) * fake, with eps ~ U[0, 1] drawn per example as
  `jax.random.uniform(key, (batch, 1, ..., 1))` and broadcast over the other axes;

    penalty = E[(||grad_x critic(x_hat)||_2 - target)^2]

  or, when `one_sided`, E[max(0, ||grad_x critic(x_hat)||_2 - target)^2], which penalises only
  gradients steeper than the target (the paper's appendix). The caller multiplies by lambda
  (10 in the paper) and adds the result to the critic's loss. The norm's gradient at an exactly
  zero input gradient is taken as 0, so the penalty (then target^2) has finite gradients.

  Args:
    critic_fn: maps inputs of shape (batch, ...) to per-example outputs of shape (batch,);
      examples must not interact inside it.
    real: real examples, shape (batch, ...).
    fake: generated examples, same shape as `real`.
    key: PRNG key for the interpolation weights.
    target: the gradient norm the penalty pulls towards (1 for a 1-Lipschitz critic).
    one_sided: penalise only norms above `target`.

  Returns:
    The scalar penalty, without the lambda factor.

  References:
    Gulrajani et al., 2017, "Improved Training of Wasserstein GANs".
  """
  real = jnp.asarray(real)
  fake = jnp.asarray(fake)
  eps = _per_example_uniform(key, real)
  interpolates = eps * real + (1.0 - eps) * fake
  norms = _per_example_norm(_input_gradients(critic_fn, interpolates))
  return _norm_penalty(norms, target, one_sided)


def r1_penalty(disc_fn: CriticFn, real: jax.typing.ArrayLike) -> jax.Array:
  """R1 penalty: the squared input-gradient norm of the discriminator on real data.

    penalty = E_{x ~ p_data} ||grad_x D(x)||_2^2

  The paper's regulariser is (gamma / 2) * E||grad_x D(x)||^2; this function returns
  E||grad_x D(x)||^2 without the 1/2 and without gamma, so the caller multiplies by gamma / 2 to
  follow the paper. Many reference implementations drop the 1/2 and multiply by gamma alone,
  which makes their gamma twice the paper's for the same regularisation strength.

  Args:
    disc_fn: maps inputs of shape (batch, ...) to per-example logits of shape (batch,);
      examples must not interact inside it.
    real: real examples, shape (batch, ...).

  Returns:
    The scalar penalty, without the gamma / 2 factor.

  References:
    Mescheder et al., 2018, "Which Training Methods for GANs do actually Converge?".
  """
  gradients = _input_gradients(disc_fn, jnp.asarray(real))
  squared_norms = jnp.sum(jnp.reshape(jnp.square(gradients), (gradients.shape[0], -1)), axis=-1)
  return jnp.mean(squared_norms)


def r2_penalty(disc_fn: CriticFn, fake: jax.typing.ArrayLike) -> jax.Array:
  """R2 penalty: the squared input-gradient norm of the discriminator on generated data.

    penalty = E_{x ~ p_g} ||grad_x D(x)||_2^2

  As for `r1_penalty`, the paper's regulariser is (gamma / 2) times this value; the caller
  multiplies by gamma / 2 (reference codes that drop the 1/2 use twice the paper's gamma).

  Args:
    disc_fn: maps inputs of shape (batch, ...) to per-example logits of shape (batch,);
      examples must not interact inside it.
    fake: generated examples, shape (batch, ...).

  Returns:
    The scalar penalty, without the gamma / 2 factor.

  References:
    Mescheder et al., 2018, "Which Training Methods for GANs do actually Converge?".
  """
  return r1_penalty(disc_fn, fake)


def dragan_penalty(
    disc_fn: CriticFn,
    real: jax.typing.ArrayLike,
    key: jax.Array,
    perturbation_scale: float = 0.5,
    target: float = 1.0,
) -> jax.Array:
  """DRAGAN penalty: a gradient penalty in a noisy neighbourhood of the real data.

  x_p = x + perturbation_scale * std(x) * u, with std taken over the whole batch and
  u ~ U[0, 1] elementwise (the authors' code; the paper writes Gaussian noise), then
  x_hat = alpha * x + (1 - alpha) * x_p with alpha ~ U[0, 1] per example, and

    penalty = E[(||grad_x D(x_hat)||_2 - target)^2].

  The caller multiplies by lambda (10 in the paper) and adds the result to the discriminator's
  loss. As in `gradient_penalty`, an exactly zero input gradient gives finite gradients.

  Args:
    disc_fn: maps inputs of shape (batch, ...) to per-example logits of shape (batch,);
      examples must not interact inside it.
    real: real examples, shape (batch, ...).
    key: PRNG key for the perturbation and the interpolation weights.
    perturbation_scale: size of the perturbation in units of the batch's standard deviation.
    target: the gradient norm the penalty pulls towards.

  Returns:
    The scalar penalty, without the lambda factor.

  References:
    Kodali et al., 2017, "On Convergence and Stability of GANs".
  """
  real = jnp.asarray(real)
  perturbation_key, interpolation_key = jax.random.split(key)
  noise = jax.random.uniform(perturbation_key, real.shape, dtype=real.dtype)
  perturbed = real + perturbation_scale * jnp.std(real) * noise
  alpha = _per_example_uniform(interpolation_key, real)
  interpolates = alpha * real + (1.0 - alpha) * perturbed
  norms = _per_example_norm(_input_gradients(disc_fn, interpolates))
  return _norm_penalty(norms, target, one_sided=False)


def weight_clipping(clip_value: float) -> optax.GradientTransformation:
  """WGAN weight clipping, as an optax transformation chained after the optimizer.

  Maps the optimizer's updates u to clip(params + u, -c, c) - params, so that
  `optax.apply_updates` yields parameters clipped to [-c, c]:

    optimizer = optax.chain(optax.rmsprop(5e-5), weight_clipping(0.01))

  The returned updates are corrected for the rounding of params + updates, so every
  parameter after `optax.apply_updates` lies in [-c, c] exactly, not merely to within an ulp.

  Args:
    clip_value: c > 0, the bound on every parameter's magnitude (0.01 in the paper).

  Returns:
    An `optax.GradientTransformation` whose `update` requires `params`.

  Raises:
    ConfigError: if `clip_value` is not a positive number.
    ValueError: (from `update`) if `params` is not given.

  References:
    Arjovsky et al., 2017, "Wasserstein Generative Adversarial Networks".
  """
  if (isinstance(clip_value, bool) or not isinstance(clip_value, numbers.Real)
      or not clip_value > 0):
    raise ConfigError(f"weight_clipping needs clip_value > 0 (the optimizer's clip), got "
                      f"{clip_value!r}")

  def init_fn(params):
    del params
    return optax.EmptyState()

  def clip_update(update: jax.Array, param: jax.Array) -> jax.Array:
    upper = jnp.asarray(clip_value, param.dtype)
    clipped_update = jnp.clip(param + update, -upper, upper) - param
    # param + (clip - param) can round one ulp past the bound; one step of the update towards
    # zero is always enough to bring the rounded sum back inside.
    applied = param + clipped_update
    clipped_update = jnp.where(
        applied > upper, jnp.nextafter(clipped_update, -jnp.inf), clipped_update)
    clipped_update = jnp.where(
        applied < -upper, jnp.nextafter(clipped_update, jnp.inf), clipped_update)
    return clipped_update

  def update_fn(updates, state, params=None):
    if params is None:
      raise ValueError(
          "weight_clipping needs the parameters: call update(updates, state, params)")
    return jax.tree.map(clip_update, updates, params), state

  return optax.GradientTransformation(init_fn, update_fn)


def _path_names(path) -> list[str]:
  """The names along a pytree key path (dict keys, attribute names, sequence indices)."""
  names = []
  for entry in path:
    for attribute in ("key", "name", "idx"):
      if hasattr(entry, attribute):
        names.append(str(getattr(entry, attribute)))
        break
  return names


def orthogonal_penalty(params, skip: tuple[str, ...] = ("shared_embedding",)) -> jax.Array:
  """BigGAN's orthogonal regularisation: the off-diagonal Gram entries of every weight matrix.

    penalty = sum_W || W W^T * (1 - I) ||_F^2

  over every leaf of `params` with two or more axes whose key path has no component equal to a
  name in `skip`, W that leaf viewed as a matrix with one row per output unit: a Flax kernel
  (..., in, out), whose outputs are its last axis, as W = kernel.reshape(-1, out).T (a torch
  weight (out, in, ...) viewed as (out, -1), up to a permutation of the columns, which W W^T
  does not see); any other leaf (an embedding table (num, dim), the per-class tables of
  `ClassConditionalBatchNorm`) as leaf.reshape(shape[0], -1), one row per class, as
  BigGAN-PyTorch views its `nn.Embedding` weights. Vectors and scalars (biases, BatchNorm
  scales, attention gains) are left out, as in BigGAN-PyTorch.

  BigGAN-PyTorch's `utils.ortho(model, strength, blacklist)` adds strength * 2 * ((W W^T) *
  (1 - I)) W to each weight's gradient directly. The gradient of this penalty is
  4 * ((W W^T) * (1 - I)) W, so adding `weight * orthogonal_penalty(g_params)` to the
  generator's loss reproduces BigGAN-PyTorch's `--G_ortho strength` with weight = strength / 2:
  its strength 1e-4 ("1e-4 should be default for BigGAN", utils.py) is weight 5e-5. The paper
  writes the regulariser as beta times this penalty with beta = 1e-4, which taken literally is
  weight 1e-4, twice the code's. BigGAN-PyTorch leaves G's shared embedding out (its
  blacklist), hence the default `skip`; its CIFAR script uses strength 0.

  The matrix products run at full float32 precision on every backend.

  References:
    Brock, Donahue and Simonyan, "Large Scale GAN Training for High Fidelity Natural Image
    Synthesis", ICLR 2019, section 3.1 (written there with W^T W, W having one column per
    output unit).

  Args:
    params: a pytree of parameters (a Flax 'params' collection).
    skip: key-path component names whose leaves are left out (exact matches).

  Returns:
    The scalar penalty, float32, without its weight.
  """
  total = jnp.zeros((), jnp.float32)
  for path, leaf in jax.tree_util.tree_leaves_with_path(params):
    names = _path_names(path)
    leaf = jnp.asarray(leaf, jnp.float32)
    if leaf.ndim < 2 or any(name in skip for name in names):
      continue
    if names and names[-1] == "kernel":
      matrix = leaf.reshape(-1, leaf.shape[-1]).T
    else:
      matrix = leaf.reshape(leaf.shape[0], -1)
    gram = jnp.matmul(matrix, matrix.T, precision=jax.lax.Precision.HIGHEST)
    off_diagonal = gram * (1.0 - jnp.eye(gram.shape[0], dtype=gram.dtype))
    total = total + jnp.sum(jnp.square(off_diagonal))
  return total


def consistency_penalty(logits: jax.typing.ArrayLike,
                        augmented_logits: jax.typing.ArrayLike) -> jax.Array:
  """Consistency regularisation: the discriminator's output should not change under an
  augmentation T that leaves the image's meaning unchanged.

    penalty = E ||D(T(x)) - D(x)||^2

  with the squared norm over the output's non-batch axes (a scalar per example for one logit).
  CR (Zhang et al. 2020) applies it to real examples; balanced CR (bCR, Zhao et al. 2021) adds the
  same term on generated ones with its own weight, so that D is not pulled towards an artefact
  of the augmentation on one side only. Both arguments are differentiated.

  Args:
    logits: D(x), shape (batch, ...).
    augmented_logits: D(T(x)) for the same examples, the same shape.

  Returns:
    The scalar penalty, without its weight (lambda_real or lambda_fake: 10 in both papers).

  References:
    Zhang, Zhang, Odena and Lee, 2020, "Consistency Regularization for Generative Adversarial
    Networks"; Zhao, Zhang, Chen, Singh and Zhang, 2021, "Improved Consistency Regularization
    for GANs".
  """
  difference = jnp.asarray(augmented_logits) - jnp.asarray(logits)
  return jnp.mean(jnp.sum(jnp.reshape(jnp.square(difference), (difference.shape[0], -1)), -1))


def ema_update(average: jax.typing.ArrayLike, value: jax.typing.ArrayLike, decay: float,
               count: jax.typing.ArrayLike) -> tuple[jax.Array, jax.Array]:
  """One step of a zero-debiased exponential moving average (Adam's bias correction).

    average' = decay * average + (1 - decay) * value,
    debiased = average' / (1 - decay^count)

  where `count` is the number of values averaged so far, this one included (count >= 1), and the
  average starts at 0: the debiased value of the first step is the value itself.

  Returns:
    (average', debiased): the state to keep and the estimate to use.
  """
  average = decay * jnp.asarray(average) + (1.0 - decay) * jnp.asarray(value)
  return average, average / (1.0 - jnp.power(decay, jnp.asarray(count, jnp.float32)))


def lecam_penalty(real_logits: jax.typing.ArrayLike, fake_logits: jax.typing.ArrayLike,
                  real_average: jax.typing.ArrayLike, fake_average: jax.typing.ArrayLike,
                  one_sided: bool = True) -> jax.Array:
  """LeCam regularisation: each side's outputs are pulled towards the other side's average.

    penalty = E_x relu(D(x) - alpha_F)^2 + E_z relu(alpha_R - D(G(z)))^2

  where alpha_R and alpha_F are exponential moving averages of the mean of D(x) and of D(G(z))
  over the discriminator's updates (`ema_update`: decay 0.99, zero-debiased, updated with the
  current batch before the penalty is taken, as the authors' code does). The paper writes the
  two terms without the relu, E||D(x) - alpha_F||^2 + E||D(G(z)) - alpha_R||^2
  (`one_sided=False`); the authors' code (google/lecam-gan, in both its BigGAN and StyleGAN2
  versions) and StudioGAN keep the relu, which penalises only a real output above the fakes'
  average and a fake output below the reals' average. For a probability-output loss the outputs
  are the logits. Bounds the discriminator's predictions to a LeCam divergence between the
  distributions (Tseng et al. 2021, section 3); the averages are not differentiated.

  Args:
    real_logits: D(x), shape (batch,) (or (batch, ...)).
    fake_logits: D(G(z)), the same shape.
    real_average, fake_average: alpha_R and alpha_F, scalars.
    one_sided: the authors' relu (default), or the paper's squared distance.

  Returns:
    The scalar penalty, without its weight (lambda: 0.3 for CIFAR-10 in the paper, 0.01 for
    the ImageNet-scale runs).

  References:
    Tseng, Jiang, Liu, Yang and Yang, 2021, "Regularizing Generative Adversarial Networks under
    Limited Data".
  """
  real_gap = jnp.asarray(real_logits) - jax.lax.stop_gradient(fake_average)
  fake_gap = jax.lax.stop_gradient(real_average) - jnp.asarray(fake_logits)
  if one_sided:
    real_gap, fake_gap = jax.nn.relu(real_gap), jax.nn.relu(fake_gap)
  return jnp.mean(jnp.square(real_gap)) + jnp.mean(jnp.square(fake_gap))


def lazy_optimizer_correction(every: int, field: str = "penalty.every") -> float:
  """The factor c = k / (k + 1) of lazy regularisation every k updates (Karras et al. 2020,
  StyleGAN2 appendix B): the regulariser runs as an extra optimizer step every k updates, with
  its weight multiplied by k, and the optimizer that takes both its steps and the main ones runs
  with learning rate lr * c and Adam's betas beta^c, so that per k main updates the parameters
  move as far, and the moment estimates forget as fast, as with k updates of the plain optimizer.

  Args:
    every: k >= 1 (1: regularised every update, no correction).
    field: the config field that set it, named in the error.

  Returns:
    c, a float in (0, 1) (1.0 for k = 1).
  """
  if isinstance(every, bool) or not isinstance(every, int) or every < 1:
    raise ConfigError(f"{field} must be a positive integer, got {every!r}")
  return 1.0 if every == 1 else every / (every + 1.0)


def path_lengths(synthesize: Callable[[jax.Array], jax.Array], ws: jax.Array,
                 keys: jax.Array) -> jax.Array:
  """The lengths ||J_w^T y||_2 / sqrt(num_ws) of StyleGAN2's path-length regularisation
  (Karras et al. 2020, section 3.2): J_w the Jacobian of example i's image with respect to its
  intermediate latents w_i, y a random image-space direction with N(0, 1 / (H * W)) entries
  (the reference's normalisation by the image's pixel count), one per example, from `keys[i]`.

  Args:
    synthesize: ws -> images, (batch, num_ws, w_dim) -> (batch, H, W, C), examples independent.
    ws: (batch, num_ws, w_dim) intermediate latents.
    keys: (batch, 2) raw PRNG keys, one per example, of the directions y.

  Returns:
    (batch,) lengths: sqrt(mean over the num_ws rows of sum over w_dim of (J_w^T y)^2), as the
    reference computes them (pl_grads.square().sum(2).mean(1).sqrt()).
  """
  images, pullback = jax.vjp(synthesize, ws)
  height, width = images.shape[1:3]
  directions = jax.vmap(lambda key: jax.random.normal(key, images.shape[1:], images.dtype))(keys)
  grads, = pullback(directions / jnp.sqrt(height * width).astype(images.dtype))
  return jnp.sqrt(jnp.mean(jnp.sum(jnp.square(grads.astype(jnp.float32)), axis=-1), axis=-1))


def path_length_penalty(lengths: jax.typing.ArrayLike, mean: jax.typing.ArrayLike) -> jax.Array:
  """StyleGAN2's path-length penalty E[(||J_w^T y|| - a)^2] of `path_lengths` and their running
  mean a (the caller's, not differentiated)."""
  lengths = jnp.asarray(lengths, jnp.float32)
  return jnp.mean(jnp.square(lengths - jax.lax.stop_gradient(mean)))


def _adapts(public: Callable[..., jax.Array]) -> Callable[[Penalty], Penalty]:
  """Marks a registered penalty as an adapter of the public function `public` (what `get`
  returns for its name), in its attribute `adapts`."""

  def mark(adapter: Penalty) -> Penalty:
    adapter.adapts = public
    return adapter

  return mark


@_adapts(r1_penalty)
def _r1(disc_fn: CriticFn, real: jax.Array, fake: jax.Array, key: jax.Array) -> jax.Array:
  del fake, key
  return r1_penalty(disc_fn, real)


@_adapts(r2_penalty)
def _r2(disc_fn: CriticFn, real: jax.Array, fake: jax.Array, key: jax.Array) -> jax.Array:
  del real, key
  return r2_penalty(disc_fn, fake)


@_adapts(dragan_penalty)
def _dragan(disc_fn: CriticFn, real: jax.Array, fake: jax.Array, key: jax.Array) -> jax.Array:
  del fake
  return dragan_penalty(disc_fn, real, key)


PENALTIES: dict[str, Penalty] = {
    "dragan": _dragan,
    "gradient_penalty": gradient_penalty,
    "r1": _r1,
    "r2": _r2,
}


def penalty(name: str) -> Penalty:
  """The penalty a config names (`penalty.name`), called as `(disc_fn, real, fake, key)`.

  Args:
    name: a key of `PENALTIES`: 'dragan', 'gradient_penalty', 'r1' or 'r2'.

  Returns:
    The registered function; it returns the scalar penalty without its weight.

  Raises:
    ConfigError: for any other name, listing the valid ones.
  """
  return errors.lookup(PENALTIES, name, "penalty", "penalty.name")


def get(name: str) -> Callable[..., jax.Array]:
  """The public function behind the penalty a config names, with its own signature.

  Args:
    name: a key of `PENALTIES`.

  Returns:
    `dragan_penalty`, `gradient_penalty`, `r1_penalty` or `r2_penalty` (a penalty registered
    without an adapter: the registered function).

  Raises:
    ConfigError: for an unknown name, listing the valid ones.
  """
  registered = penalty(name)
  return getattr(registered, "adapts", registered)
