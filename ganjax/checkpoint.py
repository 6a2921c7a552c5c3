"""Checkpoints of a training run: a thin layer over Orbax's `CheckpointManager`.

A run's workdir holds its checkpoints under `<workdir>/checkpoints/<step>/`, each step with three
items:

  state    the `GANState` pytree (both players' parameters, optimizer states, Flax collections,
           EMA parameters, counters and the PRNG key), saved with `ocp.args.StandardSave`;
  config   the experiment config as JSON (`ocp.args.JsonSave`), to check that a workdir belongs
           to the experiment being resumed without reading any array;
  data     JSON the input pipeline needs to resume (epoch, position, ...).

Usage::

    with checkpoint.Checkpointer(workdir, keep=3) as ckpt:
      abstract = jax.eval_shape(lambda: experiment.create_state_from_config(config))
      if ckpt.latest_step() is not None:
        state, saved_config, data = ckpt.restore(abstract)   # the latest step
      ...
      ckpt.save(int(state.step), state, config=config.to_dict(), data={"epoch": epoch})
      state, metrics = train.train_step(state, None)          # may donate `state` right away

Behaviour, and the Orbax machinery behind it (orbax-checkpoint 0.12):

* Saving is asynchronous by default (`CheckpointManagerOptions.enable_async_checkpointing`):
  `save` copies the arrays off the accelerator, starts writing in a background thread and
  returns, so the caller may donate the state's buffers to the next step at once. A new `save`
  first waits for the previous one; `wait()` waits explicitly and `close()` waits before
  releasing the manager.
* The latest `keep` steps are kept (`ocp.checkpoint_managers.LatestN`, the preservation-policy
  API that replaces `max_to_keep`); older ones are deleted once a newer save has finished.
* Crash safety: Orbax writes a step into `<step>.orbax-checkpoint-tmp-<timestamp>` and renames
  it to `<step>` (with a `commit_success.txt` marker) only when every item is written. A process
  killed during a save therefore leaves the earlier steps intact and an unfinished temporary
  directory that is never listed as a step; the next writable `Checkpointer` in that directory
  deletes it (`CheckpointManagerOptions.cleanup_tmp_directories`).
* Every failure to read a checkpoint (missing or truncated files, unreadable metadata, an array
  tree that does not match the state it is restored into) raises `CheckpointError` with a one-line
  message naming the step and the directory; for a mismatch it also names the first differing
  leaf and both shapes. A damaged checkpoint is reported, never skipped or replaced silently.
* A state field added after a checkpoint was written (such as `GANState.path_length`), None in
  a state whose part is off, is restored as None from a checkpoint that lacks it, so older runs
  resume; a state that has the part on reports the missing leaf.
* Multi-process (multi-host) runs: every process must create the `Checkpointer` and call `save`,
  `restore`, `read_config`, `wait` and `close` alike, in the same order. Orbax synchronises the
  processes and divides the work itself (each process writes the shards of the arrays it holds;
  the primary process writes the JSON items and finalises the step), so callers never branch on
  `jax.process_index()` around these calls. The arrays saved must be global ones: Orbax refuses
  an array that lives on one process's devices only. The GAN trainer saves its state as arrays
  replicated over one device of each process and restores it into that sharding
  (`ganjax.distributed.global_copy`, `global_target`); such a checkpoint restores on any number
  of processes, one included, and one written by a single process restores on several.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from typing import Any, Mapping

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from ganjax import paths

STATE, CONFIG, DATA = "state", "config", "data"
_SUBDIRECTORY = "checkpoints"
_MAX_CAUSE_CHARS = 300


class CheckpointError(Exception):
  """A checkpoint that is missing, damaged or incompatible with the state it is restored into.

  The message is one line naming the step and the directory. `step` and `directory` are also
  attributes; `cause` is the underlying exception, if any (kept out of the message and the
  traceback so that a command-line run reports one line).
  """

  def __init__(self, message: str, *, step: int | None = None, directory: Any = None,
               cause: BaseException | None = None):
    super().__init__(message)
    self.step = step
    self.directory = directory
    self.cause = cause


def _one_line(error: BaseException) -> str:
  """The first line of an exception's message, shortened (TensorStore errors span pages)."""
  text = str(error).strip()
  if text.startswith(("'", '"')) and text.endswith(text[0]) and isinstance(error, KeyError):
    text = text[1:-1]
  text = text.splitlines()[0] if text else ""
  if len(text) > _MAX_CAUSE_CHARS:
    text = text[:_MAX_CAUSE_CHARS] + "..."
  return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _to_json_compatible(value: Any, what: str) -> Any:
  """`value` as a plain JSON tree (an ml_collections ConfigDict is converted with to_dict())."""
  if hasattr(value, "to_dict") and callable(value.to_dict):
    value = value.to_dict()
  try:
    return json.loads(json.dumps(value))
  except (TypeError, ValueError) as error:
    raise ValueError(f"the checkpoint's {what} must be JSON-serialisable: {error}") from None


def _path_name(path: tuple[str, ...]) -> str:
  return ".".join(path) if path else "<root>"


def _shape_and_dtype(leaf: Any) -> tuple[tuple[int, ...] | None, np.dtype | None]:
  shape = getattr(leaf, "shape", None)
  dtype = getattr(leaf, "dtype", None)
  return (None if shape is None else tuple(shape)), (None if dtype is None else np.dtype(dtype))


class Checkpointer:
  """Saves and restores a run's state, config and data under `<directory>/checkpoints`.

  Wraps one `orbax.checkpoint.CheckpointManager` (the `args=` API) with items 'state'
  (`StandardSave`/`StandardRestore`), 'config' and 'data' (`JsonSave`/`JsonRestore`). See the
  module docstring for asynchronous saving, retention, crash safety and multi-process use.

  Args:
    directory: the run's workdir (a local path, which may be relative to the current directory,
      or any path `etils.epath` understands, such as gs://...). Checkpoints go to its
      'checkpoints' subdirectory, created if needed.
    keep: how many of the latest steps to keep (at least 1).
    async_save: write in a background thread (True) or finish writing inside `save` (False).
    read_only: open the directory for reading only: nothing is created, saved, deleted or cleaned
      up. Use it to read the checkpoints of a run that may still be writing them (sampling,
      evaluation); a writable Checkpointer deletes unfinished temporary directories when
      created, which would break another job's save in progress.
  """

  def __init__(self, directory: str | epath.PathLike, *, keep: int = 3, async_save: bool = True,
               read_only: bool = False):
    if keep < 1:
      raise ValueError(f"keep must be at least 1, got {keep}")
    # Orbax writes only to absolute paths.
    self._directory = epath.Path(paths.absolute(directory)) / _SUBDIRECTORY
    options = ocp.CheckpointManagerOptions(
        preservation_policy=ocp.checkpoint_managers.LatestN(n=keep),
        enable_async_checkpointing=async_save,
        cleanup_tmp_directories=not read_only,
        create=not read_only,
        read_only=read_only,
        save_interval_steps=0 if read_only else 1,  # Orbax warns when it sets 0 itself
    )
    # One handler per item, registered for both its save and its restore arguments, so that a
    # fresh manager can read an existing checkpoint's metadata and items before any save.
    registry = ocp.handlers.create_default_handler_registry(
        **{STATE: ocp.handlers.StandardCheckpointHandler(),
           CONFIG: ocp.handlers.JsonCheckpointHandler(),
           DATA: ocp.handlers.JsonCheckpointHandler()})
    with _without_read_only_warning():
      self._manager = ocp.CheckpointManager(self._directory, options=options,
                                            handler_registry=registry)
    self._read_only = read_only
    self._closed = False

  # --------------------------------------------------------------------------- properties

  @property
  def directory(self) -> epath.Path:
    """The directory holding the step directories (`<workdir>/checkpoints`)."""
    return self._directory

  def latest_step(self) -> int | None:
    """The latest finished step, or None when there is none."""
    steps = self._manager.all_steps()
    return max(steps) if steps else None

  def all_steps(self) -> list[int]:
    """The finished steps, in increasing order (temporary, unfinished ones are never listed)."""
    return sorted(self._manager.all_steps())

  # --------------------------------------------------------------------------- saving

  def save(self, step: int, state: Any, *, config: Mapping[str, Any], data: Mapping[str, Any],
           force: bool = False) -> bool:
    """Starts saving `state`, `config` and `data` as step `step`.

    Returns when the arrays have been copied for writing, while the writing continues in the
    background (with `async_save=True`); the previous save, if any, is waited for first. Call
    `wait()` (or `close()`) to be sure the step is on disk.

    Args:
      step: the training step (a Python int).
      state: the pytree to save (a `GANState`: its static fields are not saved, and are rebuilt
        from the config on restore).
      config, data: JSON-serialisable mappings (a ConfigDict is converted with `to_dict()`;
        tuples come back as lists).
      force: save even where Orbax's save-decision policy would skip the step (passed to
        `CheckpointManager.save`; with this configuration the policy saves every step, so it
        only matters to subclasses or future policies). It does not allow saving a step that is
        not later than the latest one: that would overwrite a step, or make an older step the
        "latest" one for retention and resuming.

    Returns:
      Whether a save was started: False when `step` is not later than the latest saved step.
    """
    if self._read_only:
      raise ValueError(f"cannot save step {step}: {self._directory} was opened read-only")
    step = int(step)
    config = _to_json_compatible(config, "config")
    data = _to_json_compatible(data, "data")
    latest = self.latest_step()
    if latest is not None and step <= latest:
      return False
    args = ocp.args.Composite(**{STATE: ocp.args.StandardSave(state),
                                 CONFIG: ocp.args.JsonSave(config),
                                 DATA: ocp.args.JsonSave(data)})
    return bool(self._manager.save(step, args=args, force=force))

  def wait(self) -> None:
    """Blocks until the save in progress, if any, is written (and old steps deleted).

    Raises:
      CheckpointError: the save in progress failed.
    """
    try:
      self._manager.wait_until_finished()
    except Exception as error:  # pylint: disable=broad-except
      raise CheckpointError(f"saving a checkpoint to {self._directory} failed: "
                            f"{_one_line(error)}", directory=self._directory,
                            cause=error) from None

  # --------------------------------------------------------------------------- restoring

  def _resolve_step(self, step: int | None) -> int:
    steps = self._manager.all_steps()
    if step is None:
      step = self.latest_step()
      if step is None:
        raise CheckpointError(f"no checkpoint in {self._directory}", directory=self._directory)
      return step
    step = int(step)
    if step not in steps:
      available = ", ".join(map(str, sorted(steps))) or "none"
      raise CheckpointError(f"no checkpoint for step {step} in {self._directory} "
                            f"(steps: {available})", step=step, directory=self._directory)
    return step

  def _error(self, step: int, what: str, cause: BaseException | None = None) -> CheckpointError:
    others = [s for s in sorted(self._manager.all_steps()) if s != step]
    hint = f" (other steps: {', '.join(map(str, others))})" if others else ""
    text = f"checkpoint step {step} in {self._directory} {what}"
    if cause is not None:
      text += f": {_one_line(cause)}"
    return CheckpointError(text + hint, step=step, directory=self._directory, cause=cause)

  def _check_compatible(self, step: int, target: Any) -> Any:
    """Compares the stored tree's metadata with `target` and raises naming the first leaf that
    differs. Skipped when the metadata cannot be interpreted (Orbax then checks on reading).

    Returns:
      The stored tree's metadata (Orbax's serialised form), or None where there is none.
    """
    try:
      items = self._manager.metadata(step).item_metadata
    except Exception as error:  # pylint: disable=broad-except
      raise self._error(step, "has unreadable metadata", error) from None
    if items is None or STATE not in items:
      raise self._error(step, f"has no '{STATE}' item")
    stored_metadata = items[STATE]
    if stored_metadata is None:
      return None  # no _METADATA file: nothing to compare; restoring will tell.
    stored_tree = getattr(stored_metadata, "tree", stored_metadata)
    # Both trees in Orbax's serialised form (custom nodes and namedtuples as dicts, tuples as
    # lists; None and empty containers dropped), flattened to dotted leaf names such as
    # 'g_params.Dense_0.kernel' (the names Orbax stores the arrays under).
    stored = ocp.tree.to_flat_dict(stored_tree)
    wanted = ocp.tree.to_flat_dict(target)
    problems = []
    for path, leaf in wanted.items():
      if path not in stored:
        problems.append(f"leaf {_path_name(path)} is not in the checkpoint")
        continue
      stored_shape, stored_dtype = _shape_and_dtype(stored[path])
      shape, dtype = _shape_and_dtype(leaf)
      if stored_shape is not None and shape is not None and stored_shape != shape:
        problems.append(f"leaf {_path_name(path)} has shape {stored_shape} in the checkpoint "
                        f"but {shape} in the state")
      elif stored_dtype is not None and dtype is not None and stored_dtype != dtype:
        problems.append(f"leaf {_path_name(path)} has dtype {stored_dtype} in the checkpoint "
                        f"but {dtype} in the state")
    problems += [f"the checkpoint has leaf {_path_name(path)} that the state lacks"
                 for path in stored if path not in wanted]
    if problems:
      more = f" (and {len(problems) - 1} more differences)" if len(problems) > 1 else ""
      raise self._error(step, f"does not match the state: {problems[0]}{more}")
    return stored_tree

  def restore(self, abstract_state: Any, step: int | None = None) -> tuple[Any, dict, dict]:
    """Restores (state, config, data) from `step`, the latest step when None.

    Args:
      abstract_state: the state's structure, shapes and dtypes: `jax.eval_shape` of the function
        that creates it (`ShapeDtypeStruct` leaves), or a real state (its arrays' shapes, dtypes
        and shardings are used; its values are not). Static fields (modules, optimizers, spec)
        are taken from it. Restored arrays get each leaf's `sharding` where it has one, and are
        otherwise placed on the first local device.
      step: the step to restore, or None for the latest.

    Returns:
      The state, bit-for-bit as saved, with `abstract_state`'s tree structure (None subtrees,
      such as a disabled EMA, stay None), and the config and data dicts.

    Raises:
      CheckpointError: there is no such step, or the checkpoint is damaged, or it does not match
        `abstract_state` (the message names the first differing leaf and both shapes).
    """
    step = self._resolve_step(step)
    target = jax.tree.map(_abstract_leaf, abstract_state)
    stored_tree = self._check_compatible(step, target)
    # A state field that is None (a part that is off) and that a checkpoint written before the
    # field existed lacks: the rest is restored as a dict of fields, and the field stays None.
    absent = _absent_none_fields(stored_tree, target)
    fields = None
    if absent:
      fields = {name: getattr(target, name) for name in _pytree_fields(target)
                if name not in absent}
    args = ocp.args.Composite(**{STATE: ocp.args.StandardRestore(
                                     target if fields is None else fields),
                                 CONFIG: ocp.args.JsonRestore(),
                                 DATA: ocp.args.JsonRestore()})
    try:
      restored = self._manager.restore(step, args=args)
    except Exception as error:  # pylint: disable=broad-except
      raise self._error(step, "could not be restored (damaged or incomplete)", error) from None
    state = restored[STATE] if fields is None else target.replace(**restored[STATE])
    return state, restored[CONFIG], restored[DATA]

  def read_config(self, step: int | None = None) -> dict | None:
    """The config saved with `step` (the latest when None), without reading any array; None
    when the directory has no checkpoint (and `step` is None).

    Raises:
      CheckpointError: `step` does not exist, or its config cannot be read.
    """
    if step is None and self.latest_step() is None:
      return None
    step = self._resolve_step(step)
    try:
      restored = self._manager.restore(step, args=ocp.args.Composite(
          **{CONFIG: ocp.args.JsonRestore()}))
    except Exception as error:  # pylint: disable=broad-except
      raise self._error(step, "has an unreadable config", error) from None
    return restored[CONFIG]

  # --------------------------------------------------------------------------- lifetime

  def close(self) -> None:
    """Waits for the save in progress and releases the manager (idempotent).

    Raises:
      CheckpointError: the save in progress failed (the manager is released all the same).
    """
    if self._closed:
      return
    self._closed = True
    try:
      self.wait()
    finally:
      self._manager.close()

  def __enter__(self) -> "Checkpointer":
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()


@contextlib.contextmanager
def _without_read_only_warning():
  """Drops the warning Orbax logs for every read-only manager ("Given directory is read only"):
  reading a run's checkpoints read-only is what `ganjax.sample` and `ganjax.evaluate` do."""
  def keep(record: logging.LogRecord) -> bool:
    return record.msg != "Given directory is read only=%s"
  logger = logging.getLogger("absl")
  logger.addFilter(keep)
  try:
    yield
  finally:
    logger.removeFilter(keep)


def _absent_none_fields(stored_tree: Any, target: Any) -> set[str]:
  """The names of `target`'s dataclass fields that are None and that the checkpoint's stored
  tree does not have (empty when either is not a mapping of fields)."""
  if not dataclasses.is_dataclass(target) or not isinstance(stored_tree, Mapping):
    return set()
  return {name for name in _pytree_fields(target)
          if getattr(target, name) is None and name not in stored_tree}


def _pytree_fields(node: Any) -> list[str]:
  """The names of a dataclass pytree node's fields that are pytree children (not static)."""
  return [field.name for field in dataclasses.fields(node)
          if field.metadata.get("pytree_node", True)]


def _abstract_leaf(leaf: Any) -> Any:
  """A restore target for one leaf: its shape and dtype, and where to put the restored array.

  Arrays keep their own sharding; a `ShapeDtypeStruct` keeps its sharding if it has one. Leaves
  with no sharding (from `jax.eval_shape`, or NumPy arrays) go to the first local device, rather
  than to whatever devices the checkpoint was written from.
  """
  if isinstance(leaf, jax.Array):
    return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=leaf.sharding)
  if isinstance(leaf, (jax.ShapeDtypeStruct, np.ndarray, np.generic)):
    sharding = getattr(leaf, "sharding", None)
    if sharding is None:
      sharding = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding)
  return leaf
