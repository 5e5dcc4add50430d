"""Export artifacts of keras-rnnx against keras.layers: node count and size.

Each format Keras offers on the current backend exports the same model built
twice, once with `keras.layers` and once with `keras_rnnx`; the table gives the
artifact's node count (ONNX nodes, subgraphs included; OpenVINO ops; LiteRT
operators, with how many are Flex; SavedModel graph and function nodes;
torch.export graph nodes) and its size on disk, or why the export failed.

    KERAS_BACKEND=torch python benchmarks/export_sizes.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile

import keras
import numpy as np

import keras_rnnx

BACKEND = keras.backend.backend()
FORMATS = {
    "tensorflow": ["tf_saved_model", "onnx", "openvino", "litert"],
    "jax": ["tf_saved_model", "onnx"],
    "torch": ["onnx", "openvino", "torch", "litert"],
}[BACKEND]
FILENAMES = {"onnx": "m.onnx", "openvino": "m.xml", "litert": "m.tflite", "torch": "m.pt2"}
MODELS = {
    "LSTM, sequences": dict(masked=False, layer="LSTM", return_sequences=True),
    "masked GRU, last output": dict(masked=True, layer="GRU", return_sequences=False),
}


def build(namespace, masked, layer, return_sequences):
    steps = 20 if BACKEND == "torch" else None  # torch.export keeps no dynamic length
    inputs = keras.Input((steps, 16))
    x = keras.layers.Masking(0.0)(inputs) if masked else inputs
    x = getattr(namespace, layer)(32, return_sequences=return_sequences)(x)
    model = keras.Model(inputs, keras.layers.Dense(4)(x))
    model(np.zeros((2, 20, 16), "float32"))
    return model


def count_nodes(fmt, path):
    """The artifact's node count, and for LiteRT how many are Flex ops."""
    if fmt == "onnx":
        import onnx

        def nodes(graph):
            inner = [a.g for n in graph.node for a in n.attribute if a.type == a.GRAPH]
            return len(graph.node) + sum(nodes(g) for g in inner)

        return nodes(onnx.load(path).graph), None
    if fmt == "openvino":
        import openvino

        return len(openvino.Core().read_model(path).get_ops()), None
    if fmt == "litert":
        if BACKEND == "torch":  # no TensorFlow here: LiteRT's own interpreter lists them
            from ai_edge_litert.interpreter import Interpreter

            ops = [op["op_name"] for op in Interpreter(model_path=path)._get_ops_details()]
        else:
            import io
            from contextlib import redirect_stdout

            import tensorflow as tf

            report = io.StringIO()
            with redirect_stdout(report):
                tf.lite.experimental.Analyzer.analyze(model_path=path)
            ops = re.findall(r"Op#\d+ (\w+)", report.getvalue())
        return len(ops), sum(op.startswith("Flex") for op in ops)
    if fmt == "tf_saved_model":
        from tensorflow.core.protobuf import saved_model_pb2

        proto = saved_model_pb2.SavedModel()
        with open(os.path.join(path, "saved_model.pb"), "rb") as f:
            proto.ParseFromString(f.read())
        graph = proto.meta_graphs[0].graph_def
        return len(graph.node) + sum(len(f.node_def) for f in graph.library.function), None
    import torch

    return len(torch.export.load(path).graph.nodes), None


def size(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
    total = os.path.getsize(path)
    weights = path[: -len(".xml")] + ".bin" if path.endswith(".xml") else None
    return total + (os.path.getsize(weights) if weights and os.path.exists(weights) else 0)


def measure(fmt, model):
    options = {}
    if fmt == "litert" and BACKEND == "torch":  # a static signature only, there
        options["input_signature"] = [keras.InputSpec(shape=(2, 20, 16), dtype="float32")]
    if fmt == "torch":
        import torch

        options["dynamic_shapes"] = {0: torch.export.Dim("batch", min=1)}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, FILENAMES.get(fmt, "m"))
        try:
            model.export(path, format=fmt, verbose=False, **options)
            nodes, flex = count_nodes(fmt, path)
        except Exception as error:  # noqa: BLE001 (the report says why an export failed)
            return {"error": f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"}
        return {"nodes": nodes, "flex": flex, "bytes": size(path)}


def cell(result):
    if "error" in result:
        return "fails"
    flex = f" ({result['flex']} Flex)" if result["flex"] else ""
    return f"{result['nodes']}{flex}, {result['bytes'] / 1024:.0f} KB"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    rows = []
    for fmt in FORMATS:
        for name, spec in MODELS.items():
            row = {"backend": BACKEND, "format": fmt, "model": name}
            for label, namespace in (("keras.layers", keras.layers), ("keras_rnnx", keras_rnnx)):
                row[label] = measure(fmt, build(namespace, **spec))
            rows.append(row)
    print(f"| {BACKEND} format | model | keras.layers | keras_rnnx |")
    print("|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['format']} | {row['model']} | {cell(row['keras.layers'])} "
            f"| {cell(row['keras_rnnx'])} |"
        )
    errors = [
        (row["format"], row["model"], label, row[label]["error"])
        for row in rows
        for label in ("keras.layers", "keras_rnnx")
        if "error" in row[label]
    ]
    for fmt, name, label, error in errors:
        print(f"- {label}, {fmt}, {name}: {error}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
