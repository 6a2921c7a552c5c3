"""PyTorch peers of ganjax's GPU workloads, trained the way their reference code trains them.

What a researcher would run instead of ganjax for the same experiment: the network of ganjax's
experiment config, layer for layer (the parameter counts are those of the Flax modules), with the
loss, optimizers, batch size and update schedule of the PyTorch code that the experiment follows,
timed on one device. Self-contained (torch and numpy only; ganjax is not imported), in the manner
of ../shared/bench/torch_reference.py (the CPU peer of dcgan28 and ring_mlp).

Usage:
  python benchmarks/torch_peers.py dcgan64
  python benchmarks/torch_peers.py sngan32 --mode compile --dtype bfloat16 --channels-last
  python benchmarks/torch_peers.py biggan32 --batch 8 --steps 2 --repeats 1 --device cpu
  python benchmarks/torch_peers.py WORKLOAD [--batch B] [--steps S] [--repeats R] [--warmup W]
      [--mode eager|compile] [--compile-mode default|max-autotune-no-cudagraphs|...]
      [--dtype float32|bfloat16] [--channels-last] [--device cuda|cpu] [--log-losses]

At the end it prints exactly one JSON line on stdout:
  workload, batch, n_critic, mode, compile_mode, dtype, channels_last, device, device_name,
  torch (version), tf32, threads (torch.get_num_threads()), params_g, params_d (trainable
  parameters), steps, repeats, warmup;
  ms_per_step_median: milliseconds per *generator* step, that is one generator update together
    with its n_critic discriminator updates (and, for biggan32, the orthogonal regularisation
    and the EMA update), the median over `repeats` timed blocks of `steps` such steps (on CUDA
    the device is synchronised before each reading of the clock);
  images_per_s: generated images per second, defined as batch / (seconds per generator step):
    the rate at which the generator's update consumes batches, not counting the fakes the
    discriminator steps draw;
  d_steps_per_s: discriminator updates per second, n_critic / (seconds per generator step);
  compile_s: wall time of the `warmup` untimed steps (torch.compile's compilation included in
    compile mode; cuDNN's autotuning in both);
  peak_memory_bytes: torch.cuda.max_memory_allocated() over the whole run on CUDA, null on CPU;
  loss_d, loss_g: the last step's losses (null if not finite), a sanity check;
  load_avg_1m: the 1-minute load average when the timing ended (CPU timings are skewed by other
    jobs).

Set-up common to every workload: one fixed real batch built once on the device (uniform in
[-1, 1], from numpy's default_rng(0), the values ganjax's benchmarks use; for biggan32 with
fixed random labels), so that data loading is excluded, as on the ganjax side; latents (and
biggan32's fake labels) are drawn on the device every time fakes are made. The losses are
computed on the device and never read back during timing (the references log with .item(),
a host synchronisation per step; that is left out here). `--dtype bfloat16` runs the forward
passes and losses under torch.autocast(device, torch.bfloat16) with float32 parameters and no
GradScaler; `--channels-last` converts both networks and the real batch to torch.channels_last;
`--mode compile` applies torch.compile(module, dynamic=False) to G and D (the optimizer steps,
the orthogonal regularisation and the EMA stay eager). On CUDA, torch.backends.cudnn.benchmark
is on and, for float32, TF32 is allowed for matmuls and convolutions
(torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True), as PyTorch
users would set them; the JSON's `tf32` says whether it was.

Workloads (N(0, 0.02) and Glorot initialisations as in each reference; they only matter for the
losses' sanity, not the timing):

dcgan64 -- Radford et al.'s DCGAN at 64x64x3, base_features 64 (ganjax/models/dcgan.py, 64x64
  preset; experiments/celeba64_dcgan.py), z of 100, batch 128, n_critic 1, non-saturating loss
  as BCE with logits, Adam(2e-4, betas (0.5, 0.999)) for both players, written like PyTorch's
  DCGAN example (pytorch/examples dcgan/main.py): each step D.zero_grad, D(real) against ones,
  backward; fake = G(z) generated once; D(fake.detach()) against zeros, backward; D step; then
  G.zero_grad and G's loss BCE(D(fake), ones) through the same fakes (one generator forward per
  step); G step.
  G: Linear(100 -> 4*4*512, no bias), BatchNorm1d(8192), ReLU, view (512, 4, 4);
     ConvTranspose2d 4x4 s2 p1 (no bias) -> 256, BN, ReLU; -> 128, BN, ReLU; -> 64, BN, ReLU;
     ConvTranspose2d 4x4 s2 p1 -> 3 (bias), tanh. (Flax's ConvTranspose 'SAME' at stride 2 and
     kernel 4 is padding 1 here; ganjax's BatchNorm after the Dense layer normalises each of its
     8192 units, hence BatchNorm1d(8192) where the example's first ConvTranspose2d has
     BatchNorm2d(512).)
  D: Conv2d 4x4 s2 p1 3 -> 64 (bias), LeakyReLU(0.2); Conv2d -> 128, -> 256, -> 512 (no bias),
     each BN and LeakyReLU(0.2); flatten; Linear(4*4*512 -> 1). (The example ends in a 4x4
     valid convolution and a sigmoid; ganjax, and so this peer, ends in Dense(1) on logits.)
  Parameters: G 3,592,067, D 2,765,633 (the Flax modules' counts).

sngan32 -- SNGAN's ResNet pair for CIFAR-10 (ganjax/models/resnet.py; experiments/
  cifar10_sngan.py), z of 128, batch 64, hinge loss, n_critic 5, Adam(2e-4, betas (0.0, 0.9))
  for both, trained as Mimicry (kwotsin/mimicry) trains SNGAN: its Trainer runs n_dis
  discriminator steps and then one generator step; each D step computes D(real), draws new fakes
  of the batch size (here under torch.no_grad(); Mimicry's `generate_images` runs G with grad
  and then .detach()es), D(fakes), hinge loss, backward, step; the G step draws fresh fakes of
  the batch size and minimises -mean D(G(z)) (D's weight gradients are computed and discarded,
  as in Mimicry). Spectral normalisation is Mimicry's own SpectralNorm class (one power
  iteration per forward, u stored in training mode; `SpectralNormMixin`), the same function as
  its default SNConv2d / SNLinear, which wrap torch.nn.utils.spectral_norm: that one (and
  torch.nn.utils.parametrizations.spectral_norm) fails under torch.compile here.
  G: Linear(128 -> 4*4*256, bias); three GBlocks(256): BN, ReLU, 2x nearest upsampling, conv3x3,
     BN, ReLU, conv3x3, plus the shortcut 2x upsampling then conv1x1; BN, ReLU, conv3x3 -> 3,
     tanh. (Mimicry's GBlock upsamples bilinearly; ganjax, like the SNGAN authors' Chainer code,
     uses nearest neighbours, and so does this peer.)
  D (spectral norm on every Conv and Linear): optimized block (conv3x3, ReLU, conv3x3, avgpool
     2; shortcut avgpool then conv1x1) -> 128; block (ReLU, conv3x3, ReLU, conv3x3, avgpool;
     shortcut conv1x1 then avgpool); two blocks without downsampling (identity shortcut); ReLU,
     sum over positions, Linear(128 -> 1). (Mimicry's in-place ReLU at a DBlock's input also
     rectifies its identity shortcut; here, as in ganjax and the Chainer code, it does not.)
  Parameters: G 4,276,739, D 1,053,825.

biggan32 -- BigGAN-PyTorch's (ajbrock/BigGAN-PyTorch) CIFAR-10 model as ganjax builds it
  (ganjax/models/biggan.py; experiments/cifar10_biggan.py): ch 64, 10 classes, batch 50,
  hinge loss, n_critic 4, Adam(2e-4, betas (0, 0.999), eps 1e-8) for both, EMA of G's weights
  with decay 0.9999 updated after every G step (from step 0; BigGAN-PyTorch's `ema` class also
  averages the buffers of G's state_dict, here its floating-point ones, with one
  torch._foreach_lerp_), orthogonal regularisation of G in the paper's form
  beta * sum_W ||W W^T * (1 - I)||_F^2 with beta 1e-4 over every G weight of two or more axes
  except the shared embedding (ganjax.regularizers.orthogonal_penalty's set: 27 matrices),
  applied as BigGAN-PyTorch's utils.ortho does, by adding its gradient 4 beta ((W W^T) *
  (1 - I)) W to each weight's .grad after G's backward (utils.ortho's strength 2e-4 is that
  beta). The step is train_fns.GAN_training_function: toggle_grad (D trainable, G not), then
  n_critic times: zero D's grads, draw z and uniform fake labels, G(z, y) under no_grad, one D
  forward on torch.cat([fakes, reals]) with torch.cat([y, real labels]) (split_D off), hinge
  loss, backward, D step; toggle_grad (G trainable, D not: no D weight gradients in G's
  backward); zero G's grads, fresh z and y, loss -mean D(G(z, y), y), backward, ortho, G step,
  EMA update. Spectral normalisation is BigGAN-PyTorch's own layers.SN (num_svs 1, num_itrs 1:
  one power iteration per forward, u stored in training mode), on every Conv, Linear and D's
  embedding, in both players.
  G: shared class embedding Embedding(10, 128) (no SN); z (128) split in 4 chunks of 32;
     SNLinear(32 -> 4*4*256); three GBlocks(256) (ccbn, ReLU, nearest 2x upsampling, SNConv3x3,
     ccbn, ReLU, SNConv3x3; shortcut upsample then SNConv1x1), block k's two ccbn conditioned on
     cat(shared(y), chunk k) by bias-free SNLinear(160 -> 256) gain and bias maps,
     out = x_hat * (1 + gain) + bias; self-attention (BigGAN-PyTorch's layers.Attention: SN
     1x1 convs theta, phi to C/8, g to C/2 with 2x2 max pooling of phi and g, o back to C,
     gain gamma from 0) after the block that outputs 16x16; BN (gain and bias), ReLU,
     SNConv3x3 -> 3, tanh.
  D (wide DBlocks of 256 channels): 32 -> 16 (first block without preactivation: conv, ReLU,
     conv, avgpool; shortcut avgpool then conv1x1), self-attention at 16x16 after it,
     -> 8 (preactivation; shortcut conv1x1 then avgpool), -> 8, -> 8 (identity shortcuts);
     ReLU, sum over positions phi; SNLinear(256 -> 1)(phi) + <SNEmbedding(10, 256)(y), phi>.
  Parameters: G 4,455,172, D 4,289,282.
"""
import argparse
import contextlib
import copy
import json
import math
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

WORKLOADS = ("dcgan64", "sngan32", "biggan32")
DEFAULT_BATCH = {"dcgan64": 128, "sngan32": 64, "biggan32": 50}


def real_images(batch, size, device, memory_format, seed=0):
  """One fixed batch of `batch` images in [-1, 1], (batch, 3, size, size) on `device`, drawn
  as numpy's default_rng(seed).uniform(-1, 1, (batch, size, size, 3)) (NHWC, as ganjax's)."""
  images = np.random.default_rng(seed).uniform(-1, 1, (batch, size, size, 3))
  images = torch.from_numpy(images.astype(np.float32)).permute(0, 3, 1, 2).contiguous()
  return images.to(device).contiguous(memory_format=memory_format)


# --- dcgan64: Radford et al.'s 64x64 networks, pytorch/examples' dcgan/main.py training ---------

class DCGAN64Generator(nn.Module):
  def __init__(self, latent_dim=100, base=64, channels=3):
    super().__init__()
    self.start = 8 * base
    self.fc = nn.Linear(latent_dim, 4 * 4 * self.start, bias=False)
    self.bn = nn.BatchNorm1d(4 * 4 * self.start)
    widths = [8 * base, 4 * base, 2 * base, base]
    layers = []
    for width_in, width_out in zip(widths, widths[1:]):
      layers += [nn.ConvTranspose2d(width_in, width_out, 4, 2, 1, bias=False),
                 nn.BatchNorm2d(width_out), nn.ReLU(True)]
    layers += [nn.ConvTranspose2d(base, channels, 4, 2, 1), nn.Tanh()]
    self.net = nn.Sequential(*layers)

  def forward(self, z):
    x = F.relu(self.bn(self.fc(z)))
    return self.net(x.view(z.shape[0], self.start, 4, 4))


class DCGAN64Discriminator(nn.Module):
  def __init__(self, base=64, channels=3):
    super().__init__()
    layers = [nn.Conv2d(channels, base, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    widths = [base, 2 * base, 4 * base, 8 * base]
    for width_in, width_out in zip(widths, widths[1:]):
      layers += [nn.Conv2d(width_in, width_out, 4, 2, 1, bias=False), nn.BatchNorm2d(width_out),
                 nn.LeakyReLU(0.2, True)]
    self.net = nn.Sequential(*layers)
    self.fc = nn.Linear(4 * 4 * 8 * base, 1)

  def forward(self, x):
    return self.fc(torch.flatten(self.net(x), 1)).view(-1)


def _dcgan_weights_init(module):
  """The DCGAN example's weights_init: N(0, 0.02) weights, BN gains N(1, 0.02) and biases 0."""
  if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
    nn.init.normal_(module.weight, 0.0, 0.02)
  elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
    nn.init.normal_(module.weight, 1.0, 0.02)
    nn.init.zeros_(module.bias)


def dcgan64(batch, device, memory_format):
  """(G, D, n_critic, make_step) of the dcgan64 workload."""
  latent_dim = 100
  g, d = DCGAN64Generator(latent_dim), DCGAN64Discriminator()
  g.apply(_dcgan_weights_init)
  d.apply(_dcgan_weights_init)

  def make_step(run_g, run_d, autocast):
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    criterion = nn.BCEWithLogitsLoss()
    real = real_images(batch, 64, device, memory_format)
    ones = torch.ones(batch, device=device)
    zeros = torch.zeros(batch, device=device)

    def step():
      d.zero_grad()
      with autocast():
        loss_real = criterion(run_d(real), ones)
      loss_real.backward()
      with autocast():
        fake = run_g(torch.randn(batch, latent_dim, device=device))
        loss_fake = criterion(run_d(fake.detach()), zeros)
      loss_fake.backward()
      opt_d.step()
      g.zero_grad()
      with autocast():
        loss_g = criterion(run_d(fake), ones)
      loss_g.backward()
      opt_g.step()
      return loss_real.detach() + loss_fake.detach(), loss_g.detach()
    return step
  return g, d, 1, make_step


# --- spectral normalisation: Mimicry's modules/spectral_norm.py, BigGAN-PyTorch's layers.SN ------

class SpectralNormMixin:
  """Spectral normalisation with one power iteration per forward, as Mimicry's own SpectralNorm
  (torch_mimicry/modules/spectral_norm.py) and BigGAN-PyTorch's layers.SN (num_svs = num_itrs
  = 1) compute it: with W the weight viewed as (shape[0], -1) and u (1, shape[0]) a buffer,
  v = normalize(u W), u' = normalize(v W^T) under no_grad, u <- u' stored in training mode, and
  the layer uses W / sigma with sigma = v W^T u'^T, differentiated through W.

  torch.nn.utils.spectral_norm (Mimicry's default SNConv2d and SNLinear) and
  torch.nn.utils.parametrizations.spectral_norm compute the same function, but with either, a
  torch.compile'd SNGAN D that is called twice before its backward (on the reals, then on the
  fakes) fails in that backward: a u or v vector it saved was updated in place by the second
  call (torch 2.14, inductor on the CPU). This form keeps u and v out of the saved tensors."""

  def init_sn(self, num_outputs, eps=1e-12):
    self.sn_eps = eps
    self.register_buffer("u0", torch.randn(1, num_outputs))
    self.register_buffer("sv0", torch.ones(1))

  def normalized_weight(self):
    matrix = self.weight.reshape(self.weight.shape[0], -1)
    with torch.no_grad():
      v = F.normalize(torch.matmul(self.u0, matrix), eps=self.sn_eps)
      u = F.normalize(torch.matmul(v, matrix.t()), eps=self.sn_eps)
      if self.training:
        self.u0.copy_(u)
    sigma = torch.squeeze(torch.matmul(torch.matmul(v, matrix.t()), u.t()))
    if self.training:
      with torch.no_grad():
        self.sv0.copy_(sigma)
    return self.weight / sigma


class SNConv2d(nn.Conv2d, SpectralNormMixin):
  def __init__(self, in_channels, out_channels, kernel_size=3, padding=1, bias=True):
    nn.Conv2d.__init__(self, in_channels, out_channels, kernel_size, 1, padding, bias=bias)
    self.init_sn(out_channels)

  def forward(self, x):
    return F.conv2d(x, self.normalized_weight(), self.bias, self.stride, self.padding)


class SNLinear(nn.Linear, SpectralNormMixin):
  def __init__(self, in_features, out_features, bias=True):
    nn.Linear.__init__(self, in_features, out_features, bias)
    self.init_sn(out_features)

  def forward(self, x):
    return F.linear(x, self.normalized_weight(), self.bias)


class SNEmbedding(nn.Embedding, SpectralNormMixin):
  def __init__(self, num_embeddings, embedding_dim):
    nn.Embedding.__init__(self, num_embeddings, embedding_dim)
    self.init_sn(num_embeddings)

  def forward(self, y):
    return F.embedding(y, self.normalized_weight())


# --- sngan32: SNGAN's CIFAR-10 ResNets, Mimicry's training --------------------------------------

def _upsample(x):
  return F.interpolate(x, scale_factor=2, mode="nearest")


class SNGANGBlock(nn.Module):
  def __init__(self, channels):
    super().__init__()
    self.b1 = nn.BatchNorm2d(channels)
    self.c1 = nn.Conv2d(channels, channels, 3, 1, 1)
    self.b2 = nn.BatchNorm2d(channels)
    self.c2 = nn.Conv2d(channels, channels, 3, 1, 1)
    self.c_sc = nn.Conv2d(channels, channels, 1, 1, 0)
    nn.init.xavier_uniform_(self.c1.weight, math.sqrt(2.0))
    nn.init.xavier_uniform_(self.c2.weight, math.sqrt(2.0))
    nn.init.xavier_uniform_(self.c_sc.weight, 1.0)

  def forward(self, x):
    h = self.c1(_upsample(F.relu(self.b1(x))))
    h = self.c2(F.relu(self.b2(h)))
    return h + self.c_sc(_upsample(x))


class SNGANDBlock(nn.Module):
  def __init__(self, in_channels, channels, downsample, optimized=False):
    super().__init__()
    self.downsample, self.optimized = downsample, optimized
    self.c1 = SNConv2d(in_channels, channels, 3, 1)
    self.c2 = SNConv2d(channels, channels, 3, 1)
    nn.init.xavier_uniform_(self.c1.weight, math.sqrt(2.0))
    nn.init.xavier_uniform_(self.c2.weight, math.sqrt(2.0))
    self.learnable_sc = optimized or downsample or in_channels != channels
    if self.learnable_sc:
      self.c_sc = SNConv2d(in_channels, channels, 1, 0)
      nn.init.xavier_uniform_(self.c_sc.weight, 1.0)

  def forward(self, x):
    h = self.c2(F.relu(self.c1(x if self.optimized else F.relu(x))))
    if self.downsample:
      h = F.avg_pool2d(h, 2)
    if self.optimized:
      shortcut = self.c_sc(F.avg_pool2d(x, 2))
    elif self.learnable_sc:
      shortcut = self.c_sc(x)
      if self.downsample:
        shortcut = F.avg_pool2d(shortcut, 2)
    else:
      shortcut = x
    return h + shortcut


class SNGANGenerator(nn.Module):
  def __init__(self, latent_dim=128, channels=256):
    super().__init__()
    self.channels = channels
    self.l1 = nn.Linear(latent_dim, 4 * 4 * channels)
    self.blocks = nn.Sequential(*[SNGANGBlock(channels) for _ in range(3)])
    self.b5 = nn.BatchNorm2d(channels)
    self.c5 = nn.Conv2d(channels, 3, 3, 1, 1)
    nn.init.xavier_uniform_(self.l1.weight, 1.0)
    nn.init.xavier_uniform_(self.c5.weight, 1.0)

  def forward(self, z):
    h = self.blocks(self.l1(z).view(z.shape[0], self.channels, 4, 4))
    return torch.tanh(self.c5(F.relu(self.b5(h))))


class SNGANDiscriminator(nn.Module):
  def __init__(self, channels=128):
    super().__init__()
    self.blocks = nn.Sequential(
        SNGANDBlock(3, channels, downsample=True, optimized=True),
        SNGANDBlock(channels, channels, downsample=True),
        SNGANDBlock(channels, channels, downsample=False),
        SNGANDBlock(channels, channels, downsample=False))
    self.l5 = SNLinear(channels, 1)
    nn.init.xavier_uniform_(self.l5.weight, 1.0)

  def forward(self, x):
    h = torch.sum(F.relu(self.blocks(x)), dim=(2, 3))
    return self.l5(h).view(-1)


def sngan32(batch, device, memory_format):
  """(G, D, n_critic, make_step) of the sngan32 workload."""
  latent_dim, n_critic = 128, 5
  g, d = SNGANGenerator(latent_dim, 256), SNGANDiscriminator(128)

  def make_step(run_g, run_d, autocast):
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.0, 0.9))
    real = real_images(batch, 32, device, memory_format)

    def step():
      for _ in range(n_critic):
        d.zero_grad()
        with autocast():
          output_real = run_d(real)
          with torch.no_grad():
            fake = run_g(torch.randn(batch, latent_dim, device=device))
          output_fake = run_d(fake)
          loss_d = F.relu(1.0 - output_real).mean() + F.relu(1.0 + output_fake).mean()
        loss_d.backward()
        opt_d.step()
      g.zero_grad()
      with autocast():
        loss_g = -run_d(run_g(torch.randn(batch, latent_dim, device=device))).mean()
      loss_g.backward()
      opt_g.step()
      return loss_d.detach(), loss_g.detach()
    return step
  return g, d, n_critic, make_step


# --- biggan32: BigGAN-PyTorch's CIFAR-10 model and train_fns.GAN_training_function -------------

class Attention(nn.Module):
  """BigGAN-PyTorch's layers.Attention (SAGAN's non-local block, 2x2 max-pooled phi and g)."""

  def __init__(self, ch):
    super().__init__()
    self.ch = ch
    self.theta = SNConv2d(ch, ch // 8, 1, 0, bias=False)
    self.phi = SNConv2d(ch, ch // 8, 1, 0, bias=False)
    self.g = SNConv2d(ch, ch // 2, 1, 0, bias=False)
    self.o = SNConv2d(ch // 2, ch, 1, 0, bias=False)
    self.gamma = nn.Parameter(torch.tensor(0.0))

  def forward(self, x):
    positions = x.shape[2] * x.shape[3]
    theta = self.theta(x).reshape(-1, self.ch // 8, positions)
    phi = F.max_pool2d(self.phi(x), [2, 2]).reshape(-1, self.ch // 8, positions // 4)
    g = F.max_pool2d(self.g(x), [2, 2]).reshape(-1, self.ch // 2, positions // 4)
    beta = F.softmax(torch.bmm(theta.transpose(1, 2), phi), -1)
    o = self.o(torch.bmm(g, beta.transpose(1, 2)).reshape(-1, self.ch // 2, x.shape[2],
                                                          x.shape[3]))
    return self.gamma * o + x


class CCBN(nn.Module):
  """BigGAN-PyTorch's layers.ccbn with shared embeddings: batch norm without affine terms, then
  x_hat * (1 + gain(c)) + bias(c), gain and bias bias-free SNLinear maps of the condition c."""

  def __init__(self, channels, condition_dim, eps=1e-5):
    super().__init__()
    self.gain = SNLinear(condition_dim, channels, bias=False)
    self.bias = SNLinear(condition_dim, channels, bias=False)
    self.eps = eps
    self.register_buffer("stored_mean", torch.zeros(channels))
    self.register_buffer("stored_var", torch.ones(channels))

  def forward(self, x, c):
    gain = (1 + self.gain(c)).view(c.shape[0], -1, 1, 1)
    bias = self.bias(c).view(c.shape[0], -1, 1, 1)
    out = F.batch_norm(x, self.stored_mean, self.stored_var, None, None, self.training, 0.1,
                       self.eps)
    return out * gain + bias


class BigGANGBlock(nn.Module):
  def __init__(self, channels, condition_dim):
    super().__init__()
    self.bn1 = CCBN(channels, condition_dim)
    self.conv1 = SNConv2d(channels, channels)
    self.bn2 = CCBN(channels, condition_dim)
    self.conv2 = SNConv2d(channels, channels)
    self.conv_sc = SNConv2d(channels, channels, 1, 0)

  def forward(self, x, c):
    h = _upsample(F.relu(self.bn1(x, c)))
    x = _upsample(x)
    h = self.conv2(F.relu(self.bn2(self.conv1(h), c)))
    return h + self.conv_sc(x)


class BigGANDBlock(nn.Module):
  def __init__(self, in_channels, channels, downsample, preactivation):
    super().__init__()
    self.downsample, self.preactivation = downsample, preactivation
    self.conv1 = SNConv2d(in_channels, channels)
    self.conv2 = SNConv2d(channels, channels)
    self.learnable_sc = in_channels != channels or downsample
    if self.learnable_sc:
      self.conv_sc = SNConv2d(in_channels, channels, 1, 0)

  def shortcut(self, x):
    if self.preactivation:
      if self.learnable_sc:
        x = self.conv_sc(x)
      if self.downsample:
        x = F.avg_pool2d(x, 2)
    else:
      if self.downsample:
        x = F.avg_pool2d(x, 2)
      if self.learnable_sc:
        x = self.conv_sc(x)
    return x

  def forward(self, x):
    h = F.relu(x) if self.preactivation else x
    h = self.conv2(F.relu(self.conv1(h)))
    if self.downsample:
      h = F.avg_pool2d(h, 2)
    return h + self.shortcut(x)


class BigGANGenerator(nn.Module):
  def __init__(self, latent_dim=128, num_classes=10, ch=64, shared_dim=128,
               attention_resolution=16):
    super().__init__()
    self.width = 4 * ch
    self.chunk = latent_dim // 4
    self.shared = nn.Embedding(num_classes, shared_dim)
    self.linear = SNLinear(self.chunk, 4 * 4 * self.width)
    self.blocks = nn.ModuleList(
        [BigGANGBlock(self.width, shared_dim + self.chunk) for _ in range(3)])
    self.attention_index = (8, 16, 32).index(attention_resolution)
    self.attention = Attention(self.width)
    self.output_bn = nn.BatchNorm2d(self.width)
    self.output_conv = SNConv2d(self.width, 3)

  def forward(self, z, y):
    shared = self.shared(y)
    z, *chunks = torch.split(z, self.chunk, 1)
    h = self.linear(z).view(z.shape[0], self.width, 4, 4)
    for index, (block, chunk) in enumerate(zip(self.blocks, chunks)):
      h = block(h, torch.cat([shared, chunk], 1))
      if index == self.attention_index:
        h = self.attention(h)
    return torch.tanh(self.output_conv(F.relu(self.output_bn(h))))


class BigGANDiscriminator(nn.Module):
  def __init__(self, num_classes=10, ch=64):
    super().__init__()
    width = 4 * ch
    self.blocks = nn.ModuleList([
        BigGANDBlock(3, width, downsample=True, preactivation=False),
        BigGANDBlock(width, width, downsample=True, preactivation=True),
        BigGANDBlock(width, width, downsample=False, preactivation=True),
        BigGANDBlock(width, width, downsample=False, preactivation=True)])
    self.attention = Attention(width)  # after the first block, at 16x16
    self.linear = SNLinear(width, 1)
    self.embed = SNEmbedding(num_classes, width)

  def forward(self, x, y):
    h = self.attention(self.blocks[0](x))
    for block in self.blocks[1:]:
      h = block(h)
    h = torch.sum(F.relu(h), [2, 3])
    return (self.linear(h) + torch.sum(self.embed(y) * h, 1, keepdim=True)).view(-1)


def _biggan_init(module):
  """BigGAN-PyTorch's --G_init N02 --D_init N02: every Conv, Linear and Embedding weight
  N(0, 0.02) (biases keep PyTorch's default)."""
  for layer in module.modules():
    if isinstance(layer, (nn.Conv2d, nn.Linear, nn.Embedding)):
      nn.init.normal_(layer.weight, 0, 0.02)


def _toggle_grad(module, on):
  for parameter in module.parameters():
    parameter.requires_grad = on


def orthogonal_regularization_(module, beta, skip):
  """Adds the gradient of beta * sum_W ||W W^T * (1 - I)||_F^2, 4 beta ((W W^T) * (1 - I)) W,
  to the .grad of every parameter of `module` with two or more axes that is not in `skip`, W
  the parameter viewed as (shape[0], -1) (BigGAN-PyTorch's utils.ortho, strength = 2 beta)."""
  skip = {id(parameter) for parameter in skip}
  with torch.no_grad():
    for parameter in module.parameters():
      if parameter.ndim < 2 or id(parameter) in skip or parameter.grad is None:
        continue
      w = parameter.reshape(parameter.shape[0], -1)
      gram = torch.mm(w, w.t())
      gram.fill_diagonal_(0.0)
      parameter.grad.add_(torch.mm(gram, w).reshape(parameter.shape), alpha=4.0 * beta)


def biggan32(batch, device, memory_format, num_classes=10):
  """(G, D, n_critic, make_step) of the biggan32 workload."""
  latent_dim, n_critic, ortho_beta, ema_decay = 128, 4, 1e-4, 0.9999
  g = BigGANGenerator(latent_dim, num_classes)
  d = BigGANDiscriminator(num_classes)
  _biggan_init(g)
  _biggan_init(d)

  def make_step(run_g, run_d, autocast):
    adam = dict(lr=2e-4, betas=(0.0, 0.999), eps=1e-8)
    opt_g = torch.optim.Adam(g.parameters(), **adam)
    opt_d = torch.optim.Adam(d.parameters(), **adam)
    # BigGAN-PyTorch's ema: target <- decay * target + (1 - decay) * source over G's state_dict.
    g_ema = copy.deepcopy(g).eval()
    pairs = [(target, source) for target, source in zip(g_ema.state_dict().values(),
                                                         g.state_dict().values())
             if target.is_floating_point()]
    ema_targets, ema_sources = [t for t, _ in pairs], [s for _, s in pairs]
    real = real_images(batch, 32, device, memory_format)
    real_labels = torch.from_numpy(
        np.random.default_rng(1).integers(0, num_classes, batch)).to(device)

    def step():
      _toggle_grad(d, True)
      _toggle_grad(g, False)
      for _ in range(n_critic):
        opt_d.zero_grad()
        z = torch.randn(batch, latent_dim, device=device)
        y = torch.randint(0, num_classes, (batch,), device=device)
        with autocast():
          with torch.no_grad():
            fake = run_g(z, y)
          output = run_d(torch.cat([fake, real], 0), torch.cat([y, real_labels], 0))
          d_fake, d_real = torch.split(output, [batch, batch])
          loss_d = F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()
        loss_d.backward()
        opt_d.step()
      _toggle_grad(d, False)
      _toggle_grad(g, True)
      opt_g.zero_grad()
      z = torch.randn(batch, latent_dim, device=device)
      y = torch.randint(0, num_classes, (batch,), device=device)
      with autocast():
        loss_g = -run_d(run_g(z, y), y).mean()
      loss_g.backward()
      orthogonal_regularization_(g, ortho_beta, skip=list(g.shared.parameters()))
      opt_g.step()
      with torch.no_grad():
        torch._foreach_lerp_(ema_targets, ema_sources, 1.0 - ema_decay)
      return loss_d.detach(), loss_g.detach()
    return step
  return g, d, n_critic, make_step


BUILDERS = {"dcgan64": dcgan64, "sngan32": sngan32, "biggan32": biggan32}


# --- timing ------------------------------------------------------------------------------------

def _device_name(device):
  if device.type == "cuda":
    return torch.cuda.get_device_name(device)
  try:
    with open("/proc/cpuinfo") as cpuinfo:
      for line in cpuinfo:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or "cpu"


def _finite_or_none(value):
  value = float(value)
  return value if math.isfinite(value) else None


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
  parser.add_argument("workload", choices=WORKLOADS)
  parser.add_argument("--batch", type=int, default=None,
                      help="batch size (default: the experiment's, "
                           + ", ".join(f"{k} {v}" for k, v in DEFAULT_BATCH.items()) + ")")
  parser.add_argument("--steps", type=int, default=20, help="generator steps per timed block")
  parser.add_argument("--repeats", type=int, default=5, help="timed blocks")
  parser.add_argument("--warmup", type=int, default=3,
                      help="untimed generator steps first (compilation included)")
  parser.add_argument("--mode", choices=("eager", "compile"), default="eager")
  parser.add_argument("--compile-mode", default="default",
                      help="torch.compile's mode in --mode compile (default, "
                           "max-autotune-no-cudagraphs, ...)")
  parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
  parser.add_argument("--channels-last", action="store_true")
  parser.add_argument("--device", choices=("cuda", "cpu"), default=None,
                      help="default: cuda if available, else cpu")
  parser.add_argument("--log-losses", action="store_true",
                      help="print every step's losses to stderr (synchronises: checks only)")
  args = parser.parse_args(argv)
  if args.batch is None:
    args.batch = DEFAULT_BATCH[args.workload]
  if args.device is None:
    args.device = "cuda" if torch.cuda.is_available() else "cpu"
  if min(args.batch, args.steps, args.repeats) < 1 or args.warmup < 0:
    parser.error("--batch, --steps and --repeats must be >= 1 and --warmup >= 0")
  return args


def main(argv=None):
  args = parse_args(argv)
  device = torch.device(args.device)
  cuda = device.type == "cuda"
  bfloat16 = args.dtype == "bfloat16"
  tf32 = cuda and not bfloat16
  if cuda:
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.cuda.reset_peak_memory_stats(device)
  torch.manual_seed(0)
  memory_format = torch.channels_last if args.channels_last else torch.contiguous_format

  g, d, n_critic, make_step = BUILDERS[args.workload](args.batch, device, memory_format)
  g.to(device=device, memory_format=memory_format).train()
  d.to(device=device, memory_format=memory_format).train()
  params_g = sum(p.numel() for p in g.parameters())
  params_d = sum(p.numel() for p in d.parameters())
  if args.mode == "compile":
    run_g = torch.compile(g, dynamic=False, mode=args.compile_mode)
    run_d = torch.compile(d, dynamic=False, mode=args.compile_mode)
  else:
    run_g, run_d = g, d

  def autocast():
    if bfloat16:
      return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()

  step = make_step(run_g, run_d, autocast)

  def synchronize():
    if cuda:
      torch.cuda.synchronize(device)

  counter = [0]

  def run(n):
    losses = None
    for _ in range(n):
      losses = step()
      counter[0] += 1
      if args.log_losses:
        print(f"step {counter[0]}: loss_d {float(losses[0]):.4f} loss_g {float(losses[1]):.4f}",
              file=sys.stderr)
    return losses

  synchronize()
  start = time.perf_counter()
  losses = run(args.warmup)
  synchronize()
  compile_s = time.perf_counter() - start

  times = []
  for _ in range(args.repeats):
    synchronize()
    start = time.perf_counter()
    losses = run(args.steps)
    synchronize()
    times.append((time.perf_counter() - start) / args.steps)
  seconds = statistics.median(times)

  print(json.dumps({
      "workload": args.workload, "batch": args.batch, "n_critic": n_critic,
      "mode": args.mode,
      "compile_mode": args.compile_mode if args.mode == "compile" else None,
      "dtype": args.dtype, "channels_last": args.channels_last, "device": device.type,
      "device_name": _device_name(device), "torch": torch.__version__, "tf32": tf32,
      "ms_per_step_median": round(seconds * 1e3, 3),
      "images_per_s": round(args.batch / seconds, 2),
      "d_steps_per_s": round(n_critic / seconds, 2),
      "compile_s": round(compile_s, 3),
      "peak_memory_bytes": torch.cuda.max_memory_allocated(device) if cuda else None,
      "threads": torch.get_num_threads(), "params_g": params_g, "params_d": params_d,
      "steps": args.steps, "repeats": args.repeats, "warmup": args.warmup,
      "loss_d": _finite_or_none(losses[0]) if losses else None,
      "loss_g": _finite_or_none(losses[1]) if losses else None,
      "load_avg_1m": round(os.getloadavg()[0], 2),
  }))


if __name__ == "__main__":
  main()
