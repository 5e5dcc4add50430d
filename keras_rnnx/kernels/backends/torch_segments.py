"""Per-sample resets as segments, for torch's fused kernel: each row split
where its `reset` is true, each piece a row of its own starting from its
initial states, so a kernel that knows nothing of resets runs them.

A call `(batch, time)` with resets becomes one with a row per segment,
`(segments, time)`: the segment's steps first, masked past its end (and
wherever the call's own mask is false), so the fused kernel's masked path runs
each segment for its length only (packed, in inference). The results are
gathered back: every step's output from its segment's row, the last output and
the final states from each row's last segment. A segment starts from the
restart states where `reset` is true (at a row's first step too), else, a
row's first, from the states the call was given. Where segments start is read on
the host, so only an eager call runs this; the kernel declines under a trace
or compile. Imported only on the torch backend.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import torch

from keras_rnnx.kernels.registry import RecurrentCall
from keras_rnnx.kernels.sequence import restart


def why_not_segments(call: RecurrentCall) -> str | None:
    """Why a call's resets cannot run as segments, or None."""
    if call.traced:
        return "a per-sample reset under a trace (where segments start is read on the host)"
    if call.go_backwards:
        return "a per-sample reset with go_backwards=True (segments run forwards)"
    if call.training and any(
        m.inputs is not None or m.recurrent is not None for m in call.dropout_masks
    ):
        return "a per-sample reset with dropout in training (its masks are per row)"
    return None


def run_segments(call: RecurrentCall, run):
    """`run(segment_call)` with a row per segment; returns what `Kernel.run`
    returns for `call`."""
    (x,) = keras.tree.flatten(call.inputs)
    batch, steps = x.shape[0], x.shape[1]
    restarts = call.reset.detach().cpu().numpy().astype(bool)
    starts = restarts.copy()
    starts[:, 0] = True
    rows, first = np.nonzero(starts)  # row-major: each row's segments in order
    last_of_row = np.append(rows[1:] != rows[:-1], True)
    lengths = np.where(last_of_row, steps, np.append(first[1:], steps)) - first
    time = np.minimum(first[:, None] + np.arange(steps), steps - 1)
    valid = np.arange(steps)[None] < lengths[:, None]
    if call.mask is not None:
        valid &= call.mask.detach().cpu().numpy().astype(bool)[rows[:, None], time]

    def index(array):
        return torch.as_tensor(array, device=x.device)

    states = restart(
        index(restarts[rows, first]),
        [s0[index(rows)] for s0 in keras.tree.flatten(call.restart_states)],
        [s[index(rows)] for s in keras.tree.flatten(call.states)],
    )
    last, outputs, final = run(
        dataclasses.replace(
            call,
            inputs=keras.tree.pack_sequence_as(call.inputs, [x[index(rows[:, None]), index(time)]]),
            states=keras.tree.pack_sequence_as(call.states, states),
            mask=index(valid),
            reset=None,
            restart_states=None,
        )
    )
    # Each row's last segment; each step's segment and its place in it.
    last_segment = index(np.flatnonzero(last_of_row))
    segment = np.cumsum(starts.reshape(-1)).reshape(batch, steps) - 1
    place = np.arange(steps)[None] - first[segment]
    last, final = (keras.tree.map_structure(lambda t: t[last_segment], r) for r in (last, final))
    if call.return_sequences:
        outputs = keras.tree.map_structure(lambda y: y[index(segment), index(place)], outputs)
    else:
        outputs = keras.tree.map_structure(lambda y: y[:, None], last)
    return last, outputs, final
