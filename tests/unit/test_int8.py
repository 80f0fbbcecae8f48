"""The reader's int8 serving copy: undoing fp16 storage is exact, and the copy is cached by content.

A tiny ONNX graph (no model, no torch): a MatMul whose weight is stored in float16 behind a
Cast, as ``rag.training.export`` writes the shipped reader.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from rag.span_model import float_storage, int8_copy


def _fp16_stored_matmul(path, seed=0):
    """x -> MatMul (a layer's weights) -> MatMul (the span head, named as in the reader) -> y."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((64, 32)).astype(np.float16)
    head = rng.standard_normal((32, 2)).astype(np.float16)
    graph = helper.make_graph(
        [helper.make_node("Cast", ["w__fp16"], ["w"], to=TensorProto.FLOAT, name="w__cast"),
         helper.make_node("Cast", ["head__fp16"], ["head"], to=TensorProto.FLOAT, name="head__cast"),
         helper.make_node("MatMul", ["x", "w"], ["h"], name="/m/bert/encoder/layer.1/intermediate/dense/MatMul"),
         helper.make_node("MatMul", ["h", "head"], ["y"], name="/m/qa_outputs/MatMul")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])],
        initializer=[numpy_helper.from_array(w, "w__fp16"), numpy_helper.from_array(head, "head__fp16")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return w.astype(np.float32)


def _run(path, x):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def test_float_storage_turns_the_casts_back_into_float32_weights(tmp_path):
    w = _fp16_stored_matmul(tmp_path / "m.onnx")
    model = onnx.load(str(tmp_path / "m.onnx"))
    float_storage(model)
    assert [n.op_type for n in model.graph.node] == ["MatMul", "MatMul"]
    inits = {i.name: i for i in model.graph.initializer}
    assert set(inits) == {"w", "head"} and all(i.data_type == TensorProto.FLOAT for i in inits.values())
    np.testing.assert_array_equal(numpy_helper.to_array(inits["w"]), w)
    onnx.save(model, str(tmp_path / "f.onnx"))
    x = np.random.default_rng(1).standard_normal((3, 64)).astype(np.float32)
    np.testing.assert_allclose(_run(tmp_path / "f.onnx", x), _run(tmp_path / "m.onnx", x), rtol=1e-6)


def test_the_int8_copy_is_made_once_per_file_content(tmp_path):
    _fp16_stored_matmul(tmp_path / "a.onnx", seed=0)
    _fp16_stored_matmul(tmp_path / "b.onnx", seed=1)
    cache = tmp_path / "cache"
    qa = int8_copy(tmp_path / "a.onnx", cache)
    nodes = {n.name: n.op_type for n in onnx.load(str(qa)).graph.node}
    assert set(nodes.values()) & {"DynamicQuantizeMatMul", "MatMulInteger"}
    assert nodes["/m/qa_outputs/MatMul"] == "MatMul"  # the span head stays float
    assert [n for n, op in nodes.items() if op == "MatMul"] == ["/m/qa_outputs/MatMul"]
    mtime = qa.stat().st_mtime_ns
    assert int8_copy(tmp_path / "a.onnx", cache) == qa and qa.stat().st_mtime_ns == mtime  # read, not redone
    qb = int8_copy(tmp_path / "b.onnx", cache)
    assert qb != qa  # another reader (a trained version) gets its own copy
    left = sorted(p.name for p in (cache / "onnx").iterdir() if p.name != ".reader-int8.lock")
    assert left == sorted([qa.name, qb.name])  # no temporary files left
    x = np.random.default_rng(2).standard_normal((4, 64)).astype(np.float32)
    want = _run(tmp_path / "a.onnx", x)
    got = _run(qa, x)
    assert np.abs(got - want).max() < 0.05 * np.abs(want).max()  # int8: close, not equal


def test_threads_starting_together_make_one_copy_and_leave_logging_alone(tmp_path):
    import logging
    from concurrent.futures import ThreadPoolExecutor

    _fp16_stored_matmul(tmp_path / "a.onnx")
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    with ThreadPoolExecutor(4) as pool:
        paths = list(pool.map(lambda _: int8_copy(tmp_path / "a.onnx", tmp_path / "cache"), range(4)))
    assert len(set(paths)) == 1 and paths[0].is_file()
    assert root.handlers == handlers and root.level == level
    assert [p.name for p in (tmp_path / "cache" / "onnx").iterdir() if p.name.startswith(".reader-int8-")] == []


def test_making_the_copy_imports_no_torch(tmp_path):
    import subprocess
    import sys

    _fp16_stored_matmul(tmp_path / "a.onnx")
    code = ("import sys; from pathlib import Path; from rag.span_model import int8_copy; "
            f"print(int8_copy(Path({str(tmp_path / 'a.onnx')!r}), Path({str(tmp_path / 'cache')!r})).is_file(), "
            "'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False"]


def test_each_precision_reads_its_own_calibration():
    from rag.span_model import calibration_for

    cal = {"precision": "int8", "weights": {"margin": 1.0}, "bias": -1.0, "threshold": 0.35,
           "other_precisions": {"float": {"weights": {"margin": 2.0}, "bias": -2.0, "threshold": 0.4}}}
    assert calibration_for(cal, "int8")["threshold"] == 0.35
    fl = calibration_for(cal, "float")
    assert fl["threshold"] == 0.4 and fl["weights"] == {"margin": 2.0} and fl["fit_for"] == "float"
    old = {"weights": {"margin": 1.0}, "bias": 0.0, "threshold": 0.4}  # written before precisions: a float fit
    assert calibration_for(old, "int8")["fit_for"] == "float" and calibration_for(old, "float")["threshold"] == 0.4
    assert calibration_for({}, "int8") == {}
