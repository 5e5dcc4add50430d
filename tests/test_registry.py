"""The registries (cells, kernels, fused specs) and entry-point plugins."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import keras_rnnx
from keras_rnnx.cells import registry
from keras_rnnx.kernels.reference import ReferenceKernel
from keras_rnnx.registry import Registry
from tests.helpers.oracle import assert_matches_reference, fast_and_reference, sequences

PLUGIN_INSTALLED = any(
    ep.value.startswith("rnnx_demo_plugin")
    for ep in importlib.metadata.entry_points(group=registry.ENTRY_POINT_GROUP)
)
needs_plugin = pytest.mark.skipif(
    not PLUGIN_INSTALLED,
    reason="needs examples/plugin installed (`nox -s tests` installs it)",
)


def test_a_registry_ranks_replaces_by_key_and_scopes(tmp_path, monkeypatch):
    loaded = []
    _fake_distribution(tmp_path, "rnnx_registry_plugin", ["p = json:dumps"], "rnnx.test")
    monkeypatch.syspath_prepend(str(tmp_path))
    things = Registry("rnnx.test", lambda ep, obj: loaded.append(obj), rank=lambda t: -t[1])
    things.register(("low", 1), key="a")
    things.register(("high", 5), key="b")
    assert things.items() == [("high", 5), ("low", 1)]
    assert len(loaded) == 1  # the entry point, on the first read only
    things.items()
    assert len(loaded) == 1
    with things.scoped():
        things.register(("replaced", 3), key="a")
        things.discover(force=True)
        assert things.as_dict() == {"b": ("high", 5), "a": ("replaced", 3)}
        assert len(loaded) == 2
    assert things.as_dict() == {"a": ("low", 1), "b": ("high", 5)}
    assert ("low", 1) in things and ("replaced", 3) not in things


def test_builtin_cells_are_registered():
    cells = keras_rnnx.registered_cells()
    for name in ("LSTMCell", "GRUCell", "SimpleRNNCell", "StackedRNNCells"):
        assert cells[f"keras_rnnx>{name}"] is getattr(keras_rnnx, name)
    assert keras.saving.get_registered_object("keras_rnnx>LSTMCell") is keras_rnnx.LSTMCell


def test_register_cell_with_own_package_and_name():
    @keras_rnnx.register_cell(package="my_pkg", name="Twice")
    class TwiceCell(keras.layers.Layer):
        state_size = 2

        def call(self, inputs, states):
            return 2 * states[0], [2 * states[0]]

    assert keras_rnnx.registered_cells()["my_pkg>Twice"] is TwiceCell
    assert keras.saving.get_registered_name(TwiceCell) == "my_pkg>Twice"


def test_register_cell_rejects_non_cells():
    with pytest.raises(TypeError, match="cell class with a `call` method"):
        keras_rnnx.register_cell(42)


def _fake_distribution(path, name, entry_points, group=registry.ENTRY_POINT_GROUP):
    dist = path / f"{name}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{group}]\n" + "\n".join(entry_points) + "\n")


def test_broken_plugin_warns_with_its_name_and_others_still_load(tmp_path, monkeypatch):
    (tmp_path / "good_cells.py").write_text(
        textwrap.dedent(
            """
            import keras

            class GoodCell(keras.layers.Layer):
                state_size = 1

                def call(self, inputs, states):
                    return states[0], states
            """
        )
    )
    _fake_distribution(tmp_path, "rnnx_broken_plugin", ["broken = no_such_module_anywhere:Cell"])
    _fake_distribution(tmp_path, "rnnx_good_plugin", ["good = good_cells:GoodCell"])
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(RuntimeWarning, match="'broken' of keras_rnnx.cells.*no_such_module"):
        registry.CELLS.discover(force=True)
    cells = keras_rnnx.registered_cells()
    assert "rnnx_good_plugin>GoodCell" in cells
    assert not any("broken" in name for name in cells)


@needs_plugin
def test_installed_plugin_cell_is_discovered():
    registry.CELLS.discover(force=True)
    cell_class = keras_rnnx.registered_cells()["rnnx_demo_plugin>MinimalRNNCell"]
    layer = keras_rnnx.RNN(cell_class(3), return_sequences=True)
    assert tuple(layer(np.zeros((2, 4, 5), "float32")).shape) == (2, 4, 3)


@needs_plugin
def test_saved_plugin_model_loads_without_importing_the_plugin(tmp_path):
    path = tmp_path / "plugin.keras"
    save = f"""
import numpy as np, keras, keras_rnnx
from rnnx_demo_plugin import MinimalRNNCell
model = keras.Sequential([keras.Input((4, 5)), keras_rnnx.RNN(MinimalRNNCell(3))])
x = np.random.RandomState(0).randn(2, 4, 5).astype("float32")
np.save({str(tmp_path / "out.npy")!r}, model.predict(x, verbose=0))
model.save({str(path)!r})
"""
    load = f"""
import sys, numpy as np, keras, keras_rnnx
model = keras.saving.load_model({str(path)!r})
x = np.random.RandomState(0).randn(2, 4, 5).astype("float32")
expected = np.load({str(tmp_path / "out.npy")!r})
np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-6)
print(type(model.layers[0].cell).__module__)
"""
    subprocess.run([sys.executable, "-c", save], check=True)
    result = subprocess.run(
        [sys.executable, "-c", load], check=True, capture_output=True, text=True
    )
    assert result.stdout.strip().endswith("rnnx_demo_plugin")


@needs_plugin
@pytest.mark.parametrize(
    "options", [{}, {"return_sequences": True, "return_state": True}, {"go_backwards": True}]
)
def test_installed_plugin_kernel_runs_its_cell_as_the_reference_loop(options):
    from rnnx_demo_plugin import MinimalRNNCell

    fast, reference = fast_and_reference(
        lambda **kw: keras_rnnx.RNN(MinimalRNNCell(3), **kw), **options
    )
    assert_matches_reference(fast, reference, sequences())
    assert keras_rnnx.explain(fast).kernel_name == "minimal-rnn-hoisted"
    assert keras_rnnx.explain(reference).kernel_name != "minimal-rnn-hoisted"


@needs_plugin
def test_installed_plugin_kernel_declines_other_cells_and_masks():
    from rnnx_demo_plugin import MinimalRNNCell

    masked = keras_rnnx.RNN(MinimalRNNCell(3))
    masked(sequences(shape=(2, 4, 5)), mask=np.array([[True] * 4, [True, True, False, False]]))
    assert ("minimal-rnn-hoisted", "a mask (the loop below has no masking)") in (
        keras_rnnx.explain(masked).passed_over
    )
    # A sigmoid SimpleRNN is past every built-in fused kernel.
    other = keras_rnnx.SimpleRNN(3, activation="sigmoid")
    other(sequences(shape=(2, 4, 5)))
    assert ("minimal-rnn-hoisted", "SimpleRNNCell is not a MinimalRNNCell") in (
        keras_rnnx.explain(other).passed_over
    )


def test_register_kernel_rejects_what_is_not_a_kernel():
    class NoRun:
        name, priority, fused = "no-run", 1, False

        def why_not(self, call):
            return None

    before = keras_rnnx.registered_kernels()
    with pytest.raises(TypeError, match="Expected `kernel` to be a kernel object"):
        keras_rnnx.register_kernel(NoRun())
    with pytest.raises(TypeError, match="Expected `kernel` to be a kernel object"):
        keras_rnnx.register_kernel(type(keras_rnnx.registered_kernels()[0]))
    with pytest.raises(TypeError, match="priority"):
        keras_rnnx.register_kernel(type("P", (NoRun,), {"priority": "high", "run": id})())
    assert keras_rnnx.registered_kernels() == before


KERNEL_PLUGIN = '''
import keras_rnnx
from keras_rnnx.kernels.reference import ReferenceKernel
from keras_rnnx.registry import Registry


class DoublingKernel(ReferenceKernel):
    """The reference loop with its outputs doubled: visibly this kernel."""

    name = "doubling"
    priority = 99
    fused = True

    def why_not(self, call):
        if type(call.cell) is not keras_rnnx.SimpleRNNCell:
            return "only SimpleRNNCell"
        return None

    def run(self, call):
        last, outputs, states = super().run(call)
        return 2 * last, 2 * outputs, states
'''


def test_kernel_plugins_are_selected_and_broken_ones_warn(tmp_path, monkeypatch):
    from keras_rnnx.kernels import registry as kernel_registry

    (tmp_path / "doubling_kernel.py").write_text(KERNEL_PLUGIN)
    group = kernel_registry.ENTRY_POINT_GROUP
    _fake_distribution(
        tmp_path, "rnnx_kernel_plugin", ["d = doubling_kernel:DoublingKernel"], group
    )
    _fake_distribution(tmp_path, "rnnx_bad_kernels", ["bad = no_such_kernel_module:K"], group)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(RuntimeWarning, match="'bad' of keras_rnnx.kernels"):
        kernel_registry.KERNELS.discover(force=True)
    x = np.random.RandomState(0).randn(2, 4, 5).astype("float32")
    plugged, reference = keras_rnnx.SimpleRNN(3), keras_rnnx.SimpleRNN(3, use_cudnn=False)
    plugged(x)
    reference(x)
    reference.set_weights(plugged.get_weights())
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(plugged(x)),
        2 * keras.ops.convert_to_numpy(reference(x)),
        rtol=1e-6,
    )
    assert keras_rnnx.explain(plugged).kernel_name == "doubling"
    gru = keras_rnnx.GRU(3)
    gru(x)
    assert ("doubling", "only SimpleRNNCell") in keras_rnnx.explain(gru).passed_over


class _Recording(ReferenceKernel):
    """The reference loop, under another name, recording the calls it runs."""

    def __init__(self, name, priority, fused):
        self.name, self.priority, self.fused, self.calls = name, priority, fused, []

    def run(self, call):
        self.calls.append(call)
        return super().run(call)


def test_use_cudnn_filters_the_kernels_before_selection():
    loop = keras_rnnx.register_kernel(_Recording("fast-loop", 98, fused=False))
    fused = keras_rnnx.register_kernel(_Recording("lower-fused", 97, fused=True))
    ran = {}
    for use_cudnn in ("auto", True, False):
        layer = keras_rnnx.SimpleRNN(3, activation="sigmoid", use_cudnn=use_cudnn)
        layer(sequences())
        ran[use_cudnn] = keras_rnnx.explain(layer).kernel_name
    # True reaches the fused kernel ranked below an accepting loop.
    assert ran == {"auto": "fast-loop", True: "lower-fused", False: "reference"}
    assert len(loop.calls) == len(fused.calls) == 1


def test_kernels_get_the_dropout_masks_in_the_call_and_cells_keep_none():
    kernel = keras_rnnx.register_kernel(_Recording("recording", 98, fused=False))
    cells = [keras_rnnx.GRUCell(3, dropout=0.5, recurrent_dropout=0.5), keras_rnnx.LSTMCell(2)]
    layer = keras_rnnx.RNN(cells, return_sequences=True)
    x = sequences()
    training = keras.ops.convert_to_numpy(layer(x, training=True))
    (call,) = kernel.calls
    assert [masks.cell for masks in call.dropout_masks] == cells
    gru_masks = call.dropout_masks[0]
    assert len(gru_masks.inputs) == len(gru_masks.recurrent) == 3  # one per gate, as Keras
    assert call.dropout_masks[1][1:] == (None, None, None)  # no dropout, no masks
    assert all(c.get_dropout_mask(x[:, 0]) is None for c in cells[1:])
    assert getattr(cells[0], "_dropout_mask", None) is None
    inference = keras.ops.convert_to_numpy(layer(x, training=False))
    assert not np.allclose(training, inference)  # the masks applied in training


def test_a_recurrent_call_is_frozen():
    call = keras_rnnx.SimpleRNN(2, dropout=0.5).prepare_call(sequences(), training=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        call.training = False
    assert [m.cell for m in call.dropout_masks] == [call.cell]  # drawn before it is made


def test_restart_states_keeps_its_old_name_until_0_3():
    x = sequences()
    reset = np.zeros(x.shape[:2], bool)
    call = keras_rnnx.SimpleRNN(2).prepare_call(x, reset=reset)
    assert call.restart_states is not None
    with pytest.warns(DeprecationWarning, match="restart_states"):
        assert call.reset_states is call.restart_states


def test_implementation_goes_to_the_cell():
    """Keras's `implementation` is the cell's argument: the built-in cells take
    it (their kernels are chosen otherwise), a cell Keras has no twin of
    refuses it as any unknown argument."""
    lstm = keras_rnnx.LSTM(2, implementation=1)
    assert "implementation" not in lstm.get_config()
    with pytest.raises(ValueError, match="implementation"):
        keras_rnnx.MinGRU(2, implementation=1)


def test_fused_spec_rejects_bad_layouts():
    with pytest.raises(ValueError, match="`mode`"):
        keras_rnnx.FusedSpec(keras_rnnx.LSTMCell, "lstm2")
    with pytest.raises(ValueError, match="`gate_order`"):
        keras_rnnx.FusedSpec(keras_rnnx.GRUCell, "gru", gate_order=(0, 0, 1))
    with pytest.raises(ValueError, match="`bias`"):
        keras_rnnx.FusedSpec(keras_rnnx.GRUCell, "gru", bias="three")
    with pytest.raises(TypeError, match="FusedSpec"):
        keras_rnnx.register_fused_spec({"cell": keras_rnnx.GRUCell, "mode": "gru"})


def test_fused_specs_of_the_built_in_cells():
    specs = {
        name: keras_rnnx.fused_spec(cell)
        for name, cell in {
            "lstm": keras_rnnx.LSTMCell(2),
            "gru": keras_rnnx.GRUCell(2),
            "gru_v1": keras_rnnx.GRUCell(2, reset_after=False),
            "tanh": keras_rnnx.SimpleRNNCell(2),
            "relu": keras_rnnx.SimpleRNNCell(2, activation="relu"),
            "elu": keras_rnnx.SimpleRNNCell(2, activation="elu"),
        }.items()
    }
    modes = {k: s and (s.mode, s.gates, s.states, s.gate_order) for k, s in specs.items()}
    assert modes == {
        "lstm": ("lstm", 4, 2, (0, 1, 2, 3)),
        "gru": ("gru", 3, 1, (1, 0, 2)),
        "gru_v1": None,
        "tanh": ("rnn_tanh", 1, 1, (0,)),
        "relu": ("rnn_relu", 1, 1, (0,)),
        "elu": None,
    }


def test_vendor_weights_are_the_keras_weights_in_cudnn_layout():
    cell = keras_rnnx.GRUCell(2)
    cell.build((None, 3))
    kernel, recurrent, bias = (keras.ops.convert_to_numpy(w) for w in cell.weights)
    w_ih, w_hh, b_ih, b_hh = (
        keras.ops.convert_to_numpy(w) for w in keras_rnnx.fused_spec(cell).vendor_weights(cell)
    )
    z, r, h = np.split(kernel, 3, axis=1)
    np.testing.assert_array_equal(w_ih, np.concatenate([r, z, h], axis=1).T)
    z, r, h = np.split(recurrent, 3, axis=1)
    np.testing.assert_array_equal(w_hh, np.concatenate([r, z, h], axis=1).T)
    for got, keras_bias in ((b_ih, bias[0]), (b_hh, bias[1])):
        z, r, h = np.split(keras_bias, 3)
        np.testing.assert_array_equal(got, np.concatenate([r, z, h]))


def test_renamed_names_keep_an_alias_that_warns_until_0_3():
    from keras_rnnx import context

    selection = keras_rnnx.Selection("reference")
    with pytest.warns(DeprecationWarning, match="`Selection.kernel_name`"):
        assert selection.kernel == "reference"
    layer = keras_rnnx.SimpleRNN(2)
    with pytest.warns(DeprecationWarning, match="streamed_states"):
        assert context.read().initial_state(layer, None) is None
    with pytest.warns(DeprecationWarning, match="record_selection\\(selection\\)"):
        layer.record_selection(selection, keras_rnnx.registered_kernels()[-1])
    assert keras_rnnx.explain(layer) is selection
