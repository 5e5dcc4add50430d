"""`RNN`: the layer that runs a cell over time."""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import keras
from keras import ops

from keras_rnnx import context, kernels
from keras_rnnx.cells.base import Shape, cell_initial_state, output_shapes, state_shapes
from keras_rnnx.cells.dropout import CellMasks
from keras_rnnx.cells.registry import deserialize_part
from keras_rnnx.cells.stacked import StackedRNNCells, cells_of
from keras_rnnx.kernels.registry import Kernel, RecurrentCall, logger
from keras_rnnx.kernels.selection import Selection, supports_xla
from keras_rnnx.kernels.sequence import (
    check_reset,
    resets_in_processing_order,
    zero_masked_steps,
)
from keras_rnnx.layers.keras_semantics import rnn_propagates_masks
from keras_rnnx.types import Cell, Config, Structure, Tensor, UseCudnn

USE_CUDNN_VALUES = ("auto", True, False)


def flat_shapes(shapes) -> list[tuple]:
    """The shape tuples of a (possibly nested) structure of shapes."""
    found = []
    keras.tree.map_shape_structure(lambda s: found.append(tuple(s)), shapes)
    return found


@keras.saving.register_keras_serializable(package="keras_rnnx")
class RNN(keras.layers.Layer):
    """Runs a cell over the time axis; a drop-in for `keras.layers.RNN`.

    The layer owns the loop: reversal (`go_backwards`), masking, initial and
    stateful states, and dropout masks fixed per sequence. The loop itself is
    run by the fastest kernel that accepts the call (see `keras_rnnx.explain`).

    Inputs may be any `keras.tree` structure of `(batch, time, ...)` tensors, and
    a cell's states and outputs any structure too (see the state-size
    convention in `keras_rnnx.cells.base`).

    Args:
        cell: a cell (a layer with `call(inputs, states)` and `state_size`), or
            a list of cells, which are stacked with `StackedRNNCells`.
        return_sequences: return the output at every step `(batch, time, ...)`
            rather than the last one.
        return_state: also return the final states, after the output.
        go_backwards: process the sequence from its end; the returned sequence
            is then in reversed order, as in Keras.
        stateful: carry the final states of a batch into the next one (needs a
            fixed batch size).
        unroll: unroll the loop in Python (needs a known number of steps).
        zero_output_for_mask: output zeros at masked steps instead of the
            previous output.
        use_cudnn: `"auto"` runs the fastest eligible kernel; `True` requires a
            fused kernel and raises, saying why, if none can run; `False` runs
            the reference loop.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        - `sequences`: `(batch, time, features)` tensor, or a structure of them.
        - `initial_state`: the initial states: a tensor, a list of tensors
          (flat, or nested as the cell's states), `None` for zeros (or the
          carried states when `stateful`).
        - `mask`: `(batch, time)` boolean tensor; `False` steps are skipped.
        - `training`: whether dropout is active.
        - `reset`: `(batch, time)` boolean tensor, true where a row starts a
          new segment (an episode, an utterance): its states go back to the
          layer's initial states (zeros) before that step, as if each
          segment were its own sequence. The given `initial_state`, or a
          stateful layer's carried states, start a row only where `reset` is
          false at its first step. Booleans only: another dtype is an error.
          torch's fused kernel runs resets as segments in eager calls, the
          loops run them elsewhere (`explain` says which).

    Returns:
        The output (the last step's, or every step's with `return_sequences`),
        followed by the final states when `return_state`.

    Raises:
        ValueError: a cell without `call` or `state_size`; inputs of the wrong
            rank or feature size; a mask or reset not shaped `(batch, time)`, a
            reset that is not boolean; initial
            states of the wrong number or shape; `stateful` without a fixed
            batch size, or with a different one; `unroll` with an unknown number
            of steps; `use_cudnn=True` where no fused kernel can run.

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> layer = keras_rnnx.RNN(keras_rnnx.LSTMCell(8), return_state=True)
        >>> output, h, c = layer(np.zeros((4, 10, 3), "float32"))
        >>> [tuple(t.shape) for t in (output, h, c)]
        [(4, 8), (4, 8), (4, 8)]
    """

    # Built-in layers require exactly this input rank; `None` allows rank >= 3.
    input_rank: int | None = None

    def __init__(
        self,
        cell: Cell,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        zero_output_for_mask: bool = False,
        *,
        use_cudnn: UseCudnn = "auto",
        **kwargs: Any,
    ):
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(list(cell))
        if not callable(getattr(cell, "call", None)):
            raise ValueError(
                f"Argument `cell` should have a `call` method. Received: cell={cell!r}"
            )
        if getattr(cell, "state_size", None) is None:
            raise ValueError(
                "The RNN cell should have a `state_size` attribute (single integer or "
                "list of integers, one integer per RNN state). "
                f"Received: cell={cell!r}"
            )
        state_shapes(cell)  # fails early on a malformed state_size
        if use_cudnn not in USE_CUDNN_VALUES:
            raise ValueError(
                # Keras's words, typo included: users' tests match them.
                "Invalid valid received for argument `use_cudnn`. "
                "Expected one of {'auto', True, False}. "
                f"Received: use_cudnn={use_cudnn!r}"
            )
        super().__init__(**kwargs)
        self.cell = cell
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.go_backwards = go_backwards
        self.stateful = stateful
        self.unroll = unroll
        self.zero_output_for_mask = zero_output_for_mask
        self.use_cudnn = use_cudnn
        self.supports_masking = rnn_propagates_masks()
        # Known now, as Keras decides it for cuDNN: `compile(jit_compile="auto")`
        # reads it before a functional model's layers ever run.
        self.supports_jit = supports_xla(cell, use_cudnn, unroll)
        self._untracked(states=None, selection=None, step_shapes=None)

    def _untracked(self, **attributes):
        # The stateful states and the kernel record are not weights: Keras does
        # not save or count them, so they bypass the layer's tracking.
        for name, value in attributes.items():
            object.__setattr__(self, f"_{name}", value)

    @property
    def states(self) -> Structure | None:
        """The stateful layer's state variables (`None` when not stateful)."""
        return self._states

    @property
    def variables(self) -> list:
        # States are layer state, like seeds -> list: listed here, so trainers that
        # thread state through a compiled step (JAX) carry them from batch to
        # batch, yet not among the weights, so files match Keras's.
        states = keras.tree.flatten(self._states) if self._states is not None else []
        return super().variables + states

    # ---- shapes -------------------------------------------------------------

    @staticmethod
    def _state_shapes(structure):
        """Per state of a template structure, in flat order: its shape, `None` for batch."""
        return [(None, *tuple(t.shape)[1:]) for t in keras.tree.flatten(structure)]

    def compute_output_shape(
        self, sequences_shape: Structure, initial_state_shape: Structure = None
    ) -> Structure:
        first = flat_shapes(sequences_shape)[0]
        batch, steps = first[0], first[1]
        lead = (batch, steps) if self.return_sequences else (batch,)
        output = keras.tree.map_structure(lambda s: lead + s.dims, output_shapes(self.cell))
        if not self.return_state:
            return output
        structure = self.get_initial_state(1)
        states = keras.tree.pack_sequence_as(
            structure, [Shape((batch, *s[1:])) for s in self._state_shapes(structure)]
        )
        states = keras.tree.map_structure(lambda s: s.dims, states)
        return (output, *states)

    def compute_mask(self, inputs: Structure, mask: Tensor | None = None) -> Structure:
        mask = _first_mask(mask)
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask] + [None] * len(self.get_initial_state(1))
        return output_mask

    def build(self, sequences_shape: Structure, initial_state_shape: Structure = None) -> None:
        shapes = flat_shapes(sequences_shape)
        for shape in shapes:
            self._check_rank(shape)
        step_shapes = keras.tree.map_shape_structure(lambda s: (s[0], *s[2:]), sequences_shape)
        if isinstance(self.cell, keras.layers.Layer) and not self.cell.built:
            self.cell.build(step_shapes)
        self._untracked(step_shapes=[s[1:] for s in flat_shapes(step_shapes)])
        if self.stateful:
            batch = shapes[0][0]
            if batch is None:
                raise ValueError(
                    "When using `stateful=True` in a RNN, the batch size must be "
                    f"static. Found dynamic batch size: sequence.shape={shapes[0]}. "
                    "Pass `batch_size` (or `batch_shape`) to `keras.Input`, or call "
                    "the layer on a concrete batch."
                )
            self._create_state_variables(batch)

    def _check_rank(self, shape):
        rank = len(shape)
        if (self.input_rank is not None and rank != self.input_rank) or rank < 3:
            expected = f"ndim={self.input_rank}" if self.input_rank else "min_ndim=3"
            raise ValueError(
                f"Input 0 of layer '{self.name}' is incompatible with the layer: "
                f"expected {expected}, found ndim={rank}. Full shape received: "
                f"{shape}. It expects `sequences` shaped (batch, time, features)."
            )

    def _create_state_variables(self, batch_size):
        states = keras.tree.map_structure(
            lambda v: keras.Variable(
                v, trainable=False, dtype=self.variable_dtype, name="rnn_state"
            ),
            self.get_initial_state(batch_size),
        )
        self._untracked(states=states)

    # ---- states -------------------------------------------------------------

    def get_initial_state(self, batch_size: int | Tensor) -> list[Tensor]:
        """The initial states for a batch: the cell's own, or zeros.

        Args:
            batch_size: the batch size (an int or a scalar tensor).

        Returns:
            A list with one entry per state (a nested list for stacked cells).
        """
        state = cell_initial_state(self.cell, batch_size, self.cell.compute_dtype)
        # One level of list at the top, as Keras's RNN.
        return list(state) if isinstance(state, (list, tuple)) else [state]

    def reset_state(self, states: Structure = None) -> None:
        """Reset a stateful layer's states to zeros, or to `states`.

        Args:
            states: optional values (arrays) for the states, flat or nested as
                `layer.states`.

        Raises:
            ValueError: `states` of the wrong number or shape; the states are
                then left unchanged.
        """
        if self._states is None:
            return
        variables = keras.tree.flatten(self._states)
        if states is None:
            values = [ops.zeros_like(v.value) for v in variables]
        else:
            values = self._conform_states(states, "states", batch=variables[0].shape[0])
            values = keras.tree.flatten(values)
        for variable, value in zip(variables, values):
            variable.assign(value)

    def reset_states(self, states: Structure = None) -> None:
        """Alias of `reset_state`, as in Keras."""
        self.reset_state(states)

    def _conform_states(self, states, argument, batch=None):
        """Check user-given states and pack them into the cell's structure;
        `batch`, when known, is the batch size they must have."""
        structure = self.get_initial_state(1)
        expected = self._state_shapes(structure)
        given = states if isinstance(states, (list, tuple, dict)) else [states]
        flat = keras.tree.flatten(given)
        if len(flat) != len(expected):
            raise ValueError(
                f"Layer {self.name!r} expects {len(expected)} initial state "
                f"tensor(s) in `{argument}`, shaped {expected} (None: batch). "
                f"Received: {len(flat)} tensor(s)"
            )
        dtype = self.cell.compute_dtype
        flat = [ops.convert_to_tensor(s, dtype=dtype) for s in flat]
        for tensor, shape in zip(flat, expected):
            got = tuple(tensor.shape)
            ok = len(got) == len(shape) and all(
                g is None or e is None or g == e for g, e in zip(got[1:], shape[1:])
            )
            if ok and batch is not None and got[0] is not None:
                ok = got[0] == batch
            if not ok:
                of_batch = "" if batch is None else f" with a batch of {batch}"
                raise ValueError(
                    f"Layer {self.name!r} expects `{argument}` shaped {expected} "
                    f"(None: batch){of_batch}. Received shapes: "
                    f"{[tuple(s.shape) for s in flat]}"
                )
        return keras.tree.pack_sequence_as(structure, flat)

    # ---- call ---------------------------------------------------------------

    def _check_sequences(self, flat_inputs):
        for x in flat_inputs:
            self._check_rank(tuple(x.shape))
        steps = flat_inputs[0].shape[1]
        for x, built in zip(flat_inputs, self._step_shapes or []):
            got = tuple(x.shape[2:])
            if len(got) != len(built) or any(
                g is not None and b is not None and g != b for g, b in zip(got, built)
            ):
                raise ValueError(
                    f"Layer {self.name!r} was built for steps shaped (batch, "
                    f"{', '.join(map(str, built))}) and cannot take `sequences` shaped "
                    f"{tuple(x.shape)}: the trailing dimensions must match."
                )
        if self.unroll and steps is None:
            raise ValueError(
                "Cannot unroll a RNN if the time dimension is undefined. "
                f"Layer {self.name!r} has unroll=True, which needs a known number "
                "of time steps. Pass `shape=(steps, features)` to `keras.Input`. "
                f"Received: sequences shape {tuple(flat_inputs[0].shape)}"
            )
        return steps

    def _check_steps_flags(self, flags, flat_inputs, name):
        """`mask` or `reset`, checked as `(batch, time)` and made boolean."""
        if flags is None:
            return None
        flags = ops.convert_to_tensor(flags)
        if name == "reset":
            check_reset(flags, self.name)
        batch, steps = tuple(flat_inputs[0].shape[:2])
        shape = tuple(flags.shape)
        if len(shape) != 2 or any(
            m is not None and e is not None and m != e for m, e in zip(shape, (batch, steps))
        ):
            raise ValueError(
                f"Layer {self.name!r} expects `{name}` shaped (batch, time) = "
                f"{(batch, steps)}. Received: {name} with shape {shape}"
            )
        return ops.cast(flags, "bool")

    def call(
        self,
        sequences: Structure,
        initial_state: Structure | None = None,
        mask: Tensor | None = None,
        training: bool | None = None,
        reset: Tensor | None = None,
    ) -> Structure:
        call = self.prepare_call(sequences, initial_state, mask, training, reset)
        return self.finish_call(self.select_kernel(call).run(call), call)

    # The seam between the layer and its kernels: prepare a call, select a
    # kernel, run it, finish. `Bidirectional` drives its directions through it.

    def prepare_call(
        self,
        sequences: Structure,
        initial_state: Structure | None = None,
        mask: Tensor | None = None,
        training: bool | None = None,
        reset: Tensor | None = None,
        *,
        call_context: context.CallContext | None = None,
    ) -> RecurrentCall:
        """Check a call's arguments and describe it for the kernels.

        Draws the dropout masks for the sequence (as Keras does, in
        inference too, so seeded masks stay in step), and reads what the
        call learns from its surroundings (`keras_rnnx.context`: a stream's
        states, the export it is traced for) once.

        Args:
            sequences, initial_state, mask, training, reset: as for calling
                the layer.
            call_context: the context to use, read by the caller (a
                `Bidirectional` reads one for both directions); by default
                read now.

        Returns:
            A `RecurrentCall`.

        Raises:
            ValueError: as calling the layer does, for bad arguments.
        """
        flat_inputs = [ops.convert_to_tensor(x) for x in keras.tree.flatten(sequences)]
        if call_context is None:
            call_context = context.read(flat_inputs[0])
        initial_state = call_context.streamed_states(self, initial_state)
        # In the cell's compute dtype, as its own call would cast them (a cell
        # passed in keeps its dtype policy): fused kernels use its weights as they are.
        dtype = getattr(self.cell, "compute_dtype", None)
        if dtype is not None:
            flat_inputs = [
                ops.cast(x, dtype) if keras.backend.is_float_dtype(x.dtype) else x
                for x in flat_inputs
            ]
        sequences = keras.tree.pack_sequence_as(sequences, flat_inputs)
        self._check_sequences(flat_inputs)
        mask = self._check_steps_flags(_first_mask(mask), flat_inputs, "mask")
        reset = self._check_steps_flags(reset, flat_inputs, "reset")
        reset = resets_in_processing_order(reset, self.go_backwards)
        if mask is not None:
            # No kernel sees what masked steps hold: NaN or sentinel padding
            # (`Masking(mask_value=...)`) must reach no state and no gradient.
            flat_inputs = [zero_masked_steps(x, mask) for x in flat_inputs]
            sequences = keras.tree.pack_sequence_as(sequences, flat_inputs)
        batch = ops.shape(flat_inputs[0])[0]
        if self.stateful:
            expected = keras.tree.flatten(self._states)[0].shape[0]
            got = flat_inputs[0].shape[0]
            if got is not None and got != expected:
                raise ValueError(
                    "If an RNN is stateful, the batch size of the input sequences "
                    "must be the same as the batch size of the initial state. \n"
                    f"- Expected batch size: {expected}\n- Received batch size: {got}\n"
                    f"Stateful layer {self.name!r} was built for batches of {expected}."
                )
        if initial_state is not None:
            states = self._conform_states(
                initial_state, "initial_state", batch=flat_inputs[0].shape[0]
            )
        elif self.stateful:
            # A copy: torch's autograd must not see the variables change under it.
            states = keras.tree.map_structure(lambda v: ops.copy(v.value), self._states)
        else:
            states = self.get_initial_state(batch)

        empty = 0 in tuple(flat_inputs[0].shape[:2])
        masks = () if empty else _draw_dropout_masks(self.cell, flat_inputs[0][:, 0], states)
        return kernels.RecurrentCall(
            cell=self.cell,
            inputs=sequences,
            states=states,
            mask=mask,
            training=bool(training),
            go_backwards=self.go_backwards,
            unroll=self.unroll,
            zero_output_for_mask=self.zero_output_for_mask,
            return_sequences=self.return_sequences,
            use_cudnn=self.use_cudnn,
            dropout_masks=masks,
            reset=reset,
            restart_states=None if reset is None else self.get_initial_state(batch),
            context=call_context,
        )

    def select_kernel(
        self, call: RecurrentCall, passed_over: tuple[tuple[str, str], ...] = ()
    ) -> Kernel:
        """The kernel to run `call`, recorded for `explain`.

        Args:
            call: what `prepare_call` returned.
            passed_over: `(kernel, reason)` pairs declined before (by a
                a `Bidirectional` kernel running both directions), recorded first.

        Returns:
            The kernel; `kernel.run(call)` runs the sequence.

        Raises:
            ValueError: `use_cudnn=True` and no fused kernel accepts the call.
        """
        kernel, selection = kernels.select(call)
        passed_over = (*passed_over, *selection.passed_over)
        self.record_selection(dataclasses.replace(selection, passed_over=passed_over))
        return kernel

    def record_selection(self, selection: Selection, *deprecated: Any) -> None:
        """Record the `Selection` of the kernel that runs this layer: what
        `explain` reports.

        `select_kernel` records its choice; a caller that runs the layer's
        call another way (a `Bidirectional` kernel running both directions) records it.

        Args:
            selection: the `Selection`.
            *deprecated: the kernel, which earlier versions also took (until
                0.3; it warns and is unused).

        Returns:
            None.

        Raises:
            Nothing: recording only keeps the selection.
        """
        if deprecated:
            warnings.warn(
                "`record_selection(selection, kernel)` is deprecated: the kernel is "
                "unused; call `record_selection(selection)`.",
                DeprecationWarning,
                stacklevel=2,
            )
        if selection != self._selection:
            logger.debug("%s: %s", self.name, selection)
            self._untracked(selection=selection)

    @property
    def selection(self) -> Selection | None:
        """The `Selection` of the kernel that ran this layer at its last
        trace, or `None` before its first call (`keras_rnnx.explain`)."""
        return self._selection

    def finish_call(
        self, result: tuple[Any, Any, Any], call: RecurrentCall | None = None
    ) -> Structure:
        """The layer's return value from a kernel's result; updates a
        stateful layer's states, and hands the final states to the stream
        that fed the call its states, if one did.

        Args:
            result: `(last_output, outputs, states)`, as `Kernel.run` returns.
            call: the `RecurrentCall` that ran (its context has the stream).

        Returns:
            What calling the layer returns.
        """
        # In the layer's compute dtype, as Keras's (a shared cell may have its own).
        last_output, outputs, final_states = keras.tree.map_structure(
            lambda t: ops.cast(t, self.compute_dtype), tuple(result)
        )
        if call is not None:
            context.record_final_states(call.context, self, final_states)
        if self.stateful:
            for variable, value in zip(
                keras.tree.flatten(self._states), keras.tree.flatten(final_states)
            ):
                variable.assign(value)
        output = outputs if self.return_sequences else last_output
        if self.return_state:
            return (output, *final_states)
        return output

    # ---- config -------------------------------------------------------------

    def get_config(self) -> Config:
        config = {
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "unroll": self.unroll,
            "zero_output_for_mask": self.zero_output_for_mask,
            "use_cudnn": self.use_cudnn,
            "cell": keras.saving.serialize_keras_object(self.cell),
        }
        return {**super().get_config(), **config}

    @classmethod
    def from_config(cls, config: Config, custom_objects: dict | None = None) -> Any:
        config = dict(config)
        cell = deserialize_part(config.pop("cell"), config["name"], custom_objects)
        return cls(cell, **config)


def _first_mask(mask):
    if mask is None:
        return None
    masks = [m for m in keras.tree.flatten(mask) if m is not None]
    return masks[0] if masks else None


def _draw_dropout_masks(cell, step_input, states):
    """Each cell's dropout masks for one sequence, drawn once before the
    (stateless) loop: a `CellMasks` per cell that has them, as
    `RecurrentCall.dropout_masks`. The cells keep none."""
    masks, flat_states = (), keras.tree.flatten(states)
    batch = ops.shape(step_input)[0]
    for inner in cells_of(cell):
        count = len(keras.tree.flatten(state_shapes(inner)))
        masks += _draw_cell_masks(inner, step_input, flat_states[0])
        flat_states = flat_states[count:]
        dims = keras.tree.flatten(output_shapes(inner))[0].dims
        step_input = ops.zeros((batch, *dims), dtype=step_input.dtype)
    return masks


def _draw_cell_masks(cell, step_input, state):
    if hasattr(cell, "draw_dropout_masks"):
        return (cell.draw_dropout_masks(step_input, state),)
    if not hasattr(cell, "get_dropout_mask"):
        return ()
    # A foreign cell (Keras's `DropoutRNNCell`): through its own methods.
    masks = CellMasks(
        cell, cell.get_dropout_mask(step_input), cell.get_recurrent_dropout_mask(state)
    )
    cell.reset_dropout_mask()
    cell.reset_recurrent_dropout_mask()
    return (masks,)
