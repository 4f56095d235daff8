"""The u8s8 paths of indirect and im2col-numba (issue 24): against the exact reference on odd
shapes and fuzzed ones, their phases, workspaces and names, im2col's skip, threads, and the
pointer kernels bounds-checked. (The conformance battery's 8-bit corners run them too,
through tests/test_conformance.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convbench
from convbench import ConvSpec
from convbench.algorithm import unsupported_reason
from convbench.kernels.configs import active_quant_config
from convbench.kernels.im2row import im2row_bytes
from convbench.kernels.indirection import indirection_bytes
from convbench.phases import PhasedCall
from convbench.quant import LSB_TOLERANCE, max_abs_err_lsb
from convbench.reference import reference

ALGORITHMS = ["indirect", "im2col-numba"]
ROOT = Path(__file__).resolve().parents[1]

# C and K not multiples of four or of the tile, C = 1 and 3, strides 2/3, dilation 2,
# asymmetric padding, groups, depthwise (x1, x2, a vector tail), batch 3, 1x1 both ways
SPECS = {
    "c1k1": dict(batch=1, in_channels=1, out_channels=1, height=5, width=4, kernel=3, padding=1),
    "c3k5": dict(batch=1, in_channels=3, out_channels=5, height=7, width=6, kernel=3, padding=1),
    "c17_s2_asym_b3": dict(batch=3, in_channels=17, out_channels=17, height=9, width=8, kernel=3,
                           stride=2, padding=(0, 2, 1, 0)),
    "s3_d2_1x3": dict(batch=1, in_channels=5, out_channels=3, height=10, width=11, kernel=(1, 3),
                      stride=3, dilation=2, padding=2),
    "g2_k34": dict(batch=2, in_channels=6, out_channels=34, height=5, width=5, kernel=3, groups=2,
                   padding=(0, 2, 1, 0)),
    "g3_c12": dict(batch=1, in_channels=12, out_channels=9, height=6, width=5, kernel=(3, 1), groups=3,
                   padding=1),
    "dw_s2_b2": dict(batch=2, in_channels=5, out_channels=5, height=7, width=7, kernel=3, groups=5,
                     padding=1, stride=2),
    "dw_x2_d2": dict(batch=1, in_channels=3, out_channels=6, height=7, width=7, kernel=3, groups=3,
                     padding=(0, 2, 1, 0), dilation=2),
    "dw_c37": dict(batch=1, in_channels=37, out_channels=37, height=6, width=6, kernel=3, groups=37, padding=1),
    "1x1": dict(batch=1, in_channels=17, out_channels=33, height=5, width=5, kernel=1),
    "1x1_s2": dict(batch=2, in_channels=5, out_channels=17, height=7, width=6, kernel=1, stride=2),
    "c64_k70": dict(batch=1, in_channels=64, out_channels=70, height=6, width=7, kernel=3, padding=1),
}


def _check(name: str, spec: ConvSpec, seed: int = 0) -> np.ndarray:
    algo = convbench.get_algorithm(name)
    assert unsupported_reason(algo, spec) is None
    x, qw = spec.random_inputs(seed)
    call = algo.prepare(spec, qw)
    y = call(x)
    assert isinstance(y, np.ndarray) and y.dtype == np.uint8 and y.shape == spec.output_shape
    err = max_abs_err_lsb(y, reference(spec, x, qw))
    assert err <= LSB_TOLERANCE, f"{name} {spec.describe()}: {err} LSB"
    x2, _ = spec.random_inputs(seed + 1)  # a second input through the same call, then the first again
    assert max_abs_err_lsb(call(x2), reference(spec, x2, qw)) <= LSB_TOLERANCE
    np.testing.assert_array_equal(call(x), y)
    return y


@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
@pytest.mark.parametrize("shape", list(SPECS), ids=list(SPECS))
@pytest.mark.parametrize("name", ALGORITHMS)
def test_matches_the_exact_reference(name, shape, layout):
    _check(name, ConvSpec(layout=layout, dtype="u8s8", **SPECS[shape]))


@pytest.mark.parametrize("shape", ["c3k5", "g2_k34", "dw_x2_d2", "1x1_s2"])
def test_indirect_and_im2col_numba_give_the_same_bits(shape):
    """The same micro-kernel behind both: only the way the rows are reached differs."""
    spec = ConvSpec(layout="nhwc", dtype="u8s8", **SPECS[shape])
    x, qw = spec.random_inputs(4)
    y = [convbench.get_algorithm(n).prepare(spec, qw)(x) for n in ALGORITHMS]
    np.testing.assert_array_equal(y[0], y[1])


@settings(deadline=None, max_examples=30)
@given(data=st.data())
def test_fuzz_against_the_exact_reference(data):
    groups = data.draw(st.sampled_from([1, 1, 2, 3]))
    depthwise = groups > 1 and data.draw(st.booleans())
    cin = groups if depthwise else groups * data.draw(st.integers(1, 9))
    cout = groups * data.draw(st.integers(1, 2 if depthwise else 37))
    kh, kw = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    dh, dw = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))
    pad = tuple(data.draw(st.integers(0, 2)) for _ in range(4))
    h = data.draw(st.integers(max(1, dh * (kh - 1) + 1 - pad[0] - pad[1]), 9))
    w = data.draw(st.integers(max(1, dw * (kw - 1) + 1 - pad[2] - pad[3]), 9))
    spec = ConvSpec(batch=data.draw(st.integers(1, 3)), in_channels=cin, out_channels=cout, height=h,
                    width=w, kernel=(kh, kw), stride=(data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))),
                    padding=pad, dilation=(dh, dw), groups=groups,
                    layout=data.draw(st.sampled_from(["nhwc", "nchw"])), dtype="u8s8")
    _check(data.draw(st.sampled_from(ALGORITHMS)), spec, seed=data.draw(st.integers(0, 99)))


def test_padding_reads_the_input_zero_point():
    """A layer whose every output reads padding only at the border: with x = x_zero
    everywhere, each output is the requantized bias alone, border or not."""
    spec = ConvSpec(batch=1, in_channels=6, out_channels=8, height=4, width=5, kernel=3, padding=2,
                    layout="nhwc", dtype="u8s8")
    x, qw = spec.random_inputs(3)
    x[...] = qw.x_zero
    for name in ALGORITHMS:
        y = convbench.get_algorithm(name).prepare(spec, qw)(x)
        assert np.all(y == y[:, :1, :1, :]), name  # the same at every pixel


@pytest.mark.parametrize("name", ALGORITHMS)
def test_phases_are_the_float_paths(name):
    cases = {"c17_s2_asym_b3": ("pack", "gemm"), "1x1": ("gemm",), "dw_s2_b2": ("pack", "gemm")}
    for shape, phases in cases.items():
        spec = ConvSpec(layout="nhwc", dtype="u8s8", **SPECS[shape])
        _, qw = spec.random_inputs(0)
        call = convbench.get_algorithm(name).prepare(spec, qw)
        want = ("gemm",) if name == "indirect" else phases
        assert isinstance(call, PhasedCall) and call.phases == want, (name, shape, call.phases)
        # NCHW converts inside the call, as its own steps
        nchw = convbench.get_algorithm(name).prepare(spec.replace(layout="nchw"), qw)
        assert nchw.phases == ("pack", *want, "transform_out")


def test_workspace_is_the_float_formula_in_bytes_plus_the_depthwise_row():
    algo = {n: convbench.get_algorithm(n) for n in ALGORITHMS}
    spec = ConvSpec(layout="nhwc", dtype="u8s8", **SPECS["c17_s2_asym_b3"])
    m = spec.output_height * spec.output_width
    assert algo["indirect"].workspace_bytes(spec) == indirection_bytes(spec) + 17
    assert algo["im2col-numba"].workspace_bytes(spec) == im2row_bytes(spec) + m * 8
    assert im2row_bytes(spec) == 3 * m * 9 * 17  # one byte an element
    dw = ConvSpec(layout="nchw", dtype="u8s8", **SPECS["dw_x2_d2"])
    conv = dw.input_bytes + dw.output_bytes
    assert algo["indirect"].workspace_bytes(dw) == indirection_bytes(dw) + 3 + conv + 4 * 6


def test_im2col_skips_u8s8_and_names_im2col_numba():
    spec = ConvSpec(layout="nhwc", dtype="u8s8", **SPECS["c3k5"])
    reason = unsupported_reason(convbench.get_algorithm("im2col"), spec)
    assert reason and "no BLAS has an 8-bit GEMM" in reason and "im2col-numba" in reason
    assert unsupported_reason(convbench.get_algorithm("im2col"), spec.replace(dtype="float32")) is None


def test_a_reduction_that_could_overflow_int32_is_refused_with_the_reason():
    spec = ConvSpec(batch=1, in_channels=8192, out_channels=4, height=3, width=3, kernel=3, dtype="u8s8")
    for name in ALGORITHMS:
        reason = unsupported_reason(convbench.get_algorithm(name), spec)
        assert reason and "overflow the int32 accumulator" in reason


def test_implementation_names_the_configured_u8s8_kernels():
    cfg = active_quant_config()
    dense = ConvSpec(layout="nhwc", dtype="u8s8", **SPECS["c3k5"])
    dw = ConvSpec(layout="nhwc", dtype="u8s8", **SPECS["dw_c37"])
    for name in ALGORITHMS:
        algo = convbench.get_algorithm(name)
        assert algo.implementation(dense) == f"numba:{cfg.name}"
        assert algo.implementation(dw) == f"numba:u8s8-dwconv-{cfg.dw_pixels}x{cfg.dw_channels}-{cfg.isa}"
        assert algo.implementation(dense.replace(dtype="float32")).startswith("numba:gemm-")


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
@pytest.mark.parametrize("name", ALGORITHMS)
def test_two_threads_give_the_same_bits(name):
    for shape in ("c17_s2_asym_b3", "dw_s2_b2"):
        spec = ConvSpec(layout="nhwc", dtype="u8s8", **SPECS[shape])
        x, qw = spec.random_inputs(5)
        call = convbench.get_algorithm(name).prepare(spec, qw)
        old = numba.get_num_threads()
        try:
            numba.set_num_threads(1)
            one = call(x)
            numba.set_num_threads(2)
            two = call(x)
        finally:
            numba.set_num_threads(old)
        np.testing.assert_array_equal(one, two)


# -- bounds-checked (see tests/test_boundscheck.py for why a subprocess and its own cache) ----

BOUNDS = r'''
import json
import numba
import numpy as np
import convbench
from convbench.kernels.indirection import indirection_buffer
from convbench.kernels.qdepthwise import pack_qdepthwise, qdepthwise
from convbench.kernels.qgemm import qgemm_kernel
from convbench.kernels.requant import correction, multiplier
from convbench.quant import max_abs_err_lsb
from convbench.reference import reference

assert numba.config.BOUNDSCHECK == 1
out = {}
spec = convbench.ConvSpec(batch=1, in_channels=5, out_channels=5, height=5, width=5, kernel=3,
                          padding=1, layout="nhwc", dtype="u8s8")
x, qw = spec.random_inputs(0)
offs = indirection_buffer(spec)
offs[-1, 4] = x.size  # the centre tap of the last pixel reads the pixel after the image
zero = np.full(5 + 3, qw.x_zero, np.uint8)
res = np.empty(spec.output_shape, np.uint8)
kern = qgemm_kernel()
try:
    kern.run(x.reshape(-1), zero, offs, 1, x.size, 1, 5, 5, kern.pack(qw.weight, 1), correction(qw),
             multiplier(qw), qw.y_zero, res.reshape(-1))
    out["qgemm"] = "returned"
except IndexError as exc:
    out["qgemm"] = f"IndexError: {exc}"
try:
    kern.run(x.reshape(-1), zero[:5], indirection_buffer(spec), 1, x.size, 1, 5, 5, kern.pack(qw.weight, 1),
             correction(qw), multiplier(qw), qw.y_zero, res.reshape(-1))
    out["qgemm_zero"] = "returned"
except IndexError as exc:
    out["qgemm_zero"] = f"IndexError: {exc}"
dw = spec.replace(groups=5)
_, qd = dw.random_inputs(0)
try:
    qdepthwise(x.reshape(-1), zero, offs, 1, x.size, 5, 1, pack_qdepthwise(qd.weight), correction(qd),
               multiplier(qd), qd.y_zero, res.reshape(-1))
    out["qdepthwise"] = "returned"
except IndexError as exc:
    out["qdepthwise"] = f"IndexError: {exc}"
worst = {}
for name in ("indirect", "im2col-numba"):
    for kw in SHAPES:
        for layout in ("nhwc", "nchw"):
            s = convbench.ConvSpec(**kw, layout=layout, dtype="u8s8")
            xs, q = s.random_inputs(1)
            worst[name] = max(worst.get(name, 0), max_abs_err_lsb(
                convbench.get_algorithm(name).prepare(s, q)(xs), reference(s, xs, q)))
out["battery"] = worst
print("RESULT " + json.dumps(out))
'''


@pytest.fixture(scope="module")
def bounds_checked(tmp_path_factory) -> dict:
    cache = tmp_path_factory.mktemp("numba-boundscheck-u8s8")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"}
    env.update(NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(cache),
               PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    script = f"SHAPES = {list(SPECS.values())!r}\n" + BOUNDS
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


@pytest.mark.parametrize("kernel", ["qgemm", "qdepthwise"])
def test_pointer_kernels_refuse_an_indirection_buffer_past_the_input(bounds_checked, kernel):
    assert bounds_checked[kernel].startswith(f"IndexError: {kernel} would touch the input["), bounds_checked[kernel]


def test_the_gemm_refuses_a_zero_vector_without_its_word_of_slack(bounds_checked):
    assert bounds_checked["qgemm_zero"].startswith("IndexError: qgemm would touch the zero vector[")


def test_the_u8s8_paths_are_right_bounds_checked(bounds_checked):
    battery = bounds_checked["battery"]
    assert set(battery) == set(ALGORITHMS) and max(battery.values()) <= LSB_TOLERANCE, battery
