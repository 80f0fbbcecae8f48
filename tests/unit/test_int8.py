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
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((64, 32)).astype(np.float16)
    graph = helper.make_graph(
        [helper.make_node("Cast", ["w__fp16"], ["w"], to=TensorProto.FLOAT, name="w__cast"),
         helper.make_node("MatMul", ["x", "w"], ["y"], name="/m/bert/encoder/layer.1/intermediate/dense/MatMul")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 32])],
        initializer=[numpy_helper.from_array(w, "w__fp16")])
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
    assert [n.op_type for n in model.graph.node] == ["MatMul"]
    (init,) = model.graph.initializer
    assert init.name == "w" and init.data_type == TensorProto.FLOAT
    np.testing.assert_array_equal(numpy_helper.to_array(init), w)
    onnx.save(model, str(tmp_path / "f.onnx"))
    x = np.random.default_rng(1).standard_normal((3, 64)).astype(np.float32)
    np.testing.assert_allclose(_run(tmp_path / "f.onnx", x), _run(tmp_path / "m.onnx", x), rtol=1e-6)


def test_the_int8_copy_is_made_once_per_file_content(tmp_path):
    _fp16_stored_matmul(tmp_path / "a.onnx", seed=0)
    _fp16_stored_matmul(tmp_path / "b.onnx", seed=1)
    cache = tmp_path / "cache"
    qa = int8_copy(tmp_path / "a.onnx", cache)
    ops = {n.op_type for n in onnx.load(str(qa)).graph.node}
    assert "MatMul" not in ops and ops & {"DynamicQuantizeMatMul", "MatMulInteger"}
    mtime = qa.stat().st_mtime_ns
    assert int8_copy(tmp_path / "a.onnx", cache) == qa and qa.stat().st_mtime_ns == mtime  # read, not redone
    qb = int8_copy(tmp_path / "b.onnx", cache)
    assert qb != qa  # another reader (a trained version) gets its own copy
    assert sorted(p.name for p in (cache / "onnx").iterdir()) == sorted([qa.name, qb.name])  # no temporary files left
    x = np.random.default_rng(2).standard_normal((4, 64)).astype(np.float32)
    want = _run(tmp_path / "a.onnx", x)
    got = _run(qa, x)
    assert np.abs(got - want).max() < 0.05 * np.abs(want).max()  # int8: close, not equal
