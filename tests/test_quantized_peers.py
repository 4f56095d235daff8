"""8-bit peers (issue 24): ONNX Runtime's QLinearConv and PyTorch's quantized engines
(torch's default, onednn, fbgemm, qnnpack) on u8s8 layers: the conformance battery, the
cases it does not reach (zero points at both ends, extreme scales, asymmetric padding, wide
depthwise layers), what each engine was found unable to do, thread counts and the names
of what ran."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import convbench
from convbench.algorithm import unsupported_reason
from convbench.algorithms.vnni import saturates_without_vnni
from convbench.machine.threads import limit_threads
from convbench.reference import reference
from convbench.testing import conformance_specs, parametrize_conformance
from extras import have, needs_extra

ROOT = Path(__file__).resolve().parent.parent
TORCH_PEERS = ["torch", "onednn", "fbgemm", "qnnpack"]
PEERS_8BIT = [n for n in (*TORCH_PEERS, "onnxruntime") if n in convbench.list_algorithms()]
needs_torch = needs_extra("peers", "torch")
needs_ort = needs_extra("peers", "onnx", "onnxruntime")
pytestmark = needs_extra("peers")
NO_VNNI = saturates_without_vnni()
#: the x86 libraries' u8s8 peers refuse a CPU without VNNI: tests that run them need one
needs_vnni = pytest.mark.skipif(NO_VNNI is not None, reason=f"the x86 u8s8 peers are refused here: {NO_VNNI}")


def _spec(**kw) -> convbench.ConvSpec:
    base = dict(batch=1, in_channels=8, out_channels=16, height=7, width=6, kernel=3, padding=1, dtype="u8s8")
    return convbench.ConvSpec(**{**base, **kw})


def _lsb(name: str, spec: convbench.ConvSpec, x=None, qw=None, seed: int = 0) -> int:
    """Largest difference from the exact reference, in output units."""
    if x is None:
        x, qw = spec.random_inputs(seed)
    algo = convbench.get_algorithm(name)
    with limit_threads(1):
        y = algo.prepare(spec, qw)(x)
    assert y.dtype == np.uint8 and y.shape == spec.output_shape
    return int(np.abs(y.astype(np.int16) - reference(spec, x, qw).astype(np.int16)).max())


def test_the_8bit_peers_are_registered_with_their_dtypes():
    if have("peers", "torch"):
        for name in ("torch", "onednn"):
            assert "u8s8" in convbench.get_algorithm(name).dtypes
        for name in ("fbgemm", "qnnpack"):
            algo = convbench.get_algorithm(name)
            assert algo.peer and algo.dtypes == ("u8s8",)
            float_spec = _spec(dtype="float32")
            assert unsupported_reason(algo, float_spec) == f"{name} runs u8s8 only"
    if have("peers", "onnx", "onnxruntime"):
        assert convbench.get_algorithm("onnxruntime").dtypes == ("float32", "u8s8")
    assert "QNNPACK" in convbench.get_algorithm("qnnpack").description
    assert "Indirect Convolution paper" in convbench.get_algorithm("qnnpack").description


@parametrize_conformance(*PEERS_8BIT, specs=conformance_specs(dtypes=["u8s8"]))
def test_conformance_of_the_8bit_peers(algorithm, spec, check):
    check(algorithm, spec)


#: What the battery's table does not reach: zero points at both ends, padding taps reading a
#: zero point of 255, asymmetric padding, dilation, batch 2, one input channel in NHWC,
#: grouped and depthwise layers with a channel multiplier.
EDGE_SPECS = {
    "asym-pad": dict(padding=(0, 2, 1, 0)),
    "dilated-s2": dict(height=11, width=10, dilation=2, stride=2, padding=2),
    "batch2-1x1": dict(batch=2, kernel=1, padding=0),
    "c1": dict(in_channels=1, out_channels=4),
    "grouped": dict(in_channels=8, out_channels=12, groups=4),
    "dw-x2": dict(in_channels=8, out_channels=16, groups=8, padding=0),
    "5x5-s2": dict(kernel=5, stride=2, padding=2, height=9, width=9),
}


@pytest.mark.parametrize("name", PEERS_8BIT)
@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("case", sorted(EDGE_SPECS))
@pytest.mark.parametrize("zeros", [(0, 255), (255, 0), (128, 128)])
def test_8bit_peers_are_exact_at_the_edges(name, layout, case, zeros):
    spec = _spec(layout=layout, **EDGE_SPECS[case])
    reason = unsupported_reason(convbench.get_algorithm(name), spec)
    if reason:
        pytest.skip(f"{name}: {reason}")
    x, qw = spec.random_inputs(7)
    qw = dataclasses.replace(qw, x_zero=zeros[0], y_zero=zeros[1])
    assert _lsb(name, spec, x, qw) <= 1


@pytest.mark.parametrize("name", PEERS_8BIT)
def test_extreme_scales_and_a_large_bias_stay_within_one_lsb(name):
    # torch takes the bias as a float and requantizes it: a large int32 bias with tiny and
    # large scales is where that could round to another integer
    spec = _spec(in_channels=16, out_channels=16)
    reason = unsupported_reason(convbench.get_algorithm(name), spec)
    if reason:
        pytest.skip(f"{name}: {reason}")
    x, qw = spec.random_inputs(3)
    k = spec.out_channels
    w_scale = np.geomspace(1e-6, 1e2, k).astype(np.float32)
    bias = np.linspace(-2**30, 2**30, k).astype(np.int32)
    for x_scale, y_scale in ((1e-5, 1e-3), (3.0, 1e4)):
        q = dataclasses.replace(qw, w_scale=w_scale, bias=bias, x_scale=x_scale, y_scale=y_scale)
        assert _lsb(name, spec, x, q) <= 1, (x_scale, y_scale)


# -- what an engine cannot do, found by measuring ------------------------------------------


def test_the_x86_8bit_peers_are_refused_on_a_cpu_without_vnni_and_qnnpack_is_not(monkeypatch):
    from convbench.algorithms import vnni

    monkeypatch.setattr(vnni.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(vnni, "host_features", lambda: frozenset({"avx2", "fma"}))
    spec = _spec()
    for name in [n for n in ("onednn", "fbgemm", "onnxruntime") if n in PEERS_8BIT]:
        reason = unsupported_reason(convbench.get_algorithm(name), spec)
        assert reason and "without VNNI" in reason and "saturating int16" in reason, name
    if "qnnpack" in PEERS_8BIT:
        assert unsupported_reason(convbench.get_algorithm("qnnpack"), spec) is None
    monkeypatch.setattr(vnni, "host_features", lambda: frozenset({"avx2", "avxvnni"}))
    assert vnni.saturates_without_vnni() is None


@needs_vnni
@needs_torch
def test_fbgemm_depthwise_fast_path_is_refused_and_really_is_wrong():
    import torch

    from convbench.algorithms import torch_quantized as tq

    dw = _spec(in_channels=16, out_channels=16, groups=16)
    reason = unsupported_reason(convbench.get_algorithm("fbgemm"), dw)
    assert reason and "saturating int16" in reason
    # the reason is a measurement: run the engine anyway (past supports) and see it miss by far
    x, qw = dw.random_inputs(0)
    y = tq.prepare(torch, dw, qw, "fbgemm")(x)
    assert np.abs(y.astype(int) - reference(dw, x, qw).astype(int)).max() > 8, (
        "fbgemm's depthwise fast path is now exact on full-range u8: drop the refusal in torch_quantized")
    # off the fast path (padding 0; channels not a multiple of 8) fbgemm runs, and is exact
    for ok in (dw.replace(padding=0), _spec(in_channels=12, out_channels=12, groups=12)):
        assert unsupported_reason(convbench.get_algorithm("fbgemm"), ok) is None
        assert _lsb("fbgemm", ok) <= 1


@needs_torch
def test_the_default_x86_engine_refuses_only_the_depthwise_layers_it_hands_to_fbgemm():
    from convbench.algorithms import torch_quantized as tq

    torch_peer = convbench.get_algorithm("torch")
    narrow, wide = (_spec(in_channels=c, out_channels=c, groups=c) for c in (96, 128))
    assert torch_peer.implementation(narrow) == f"torch:x86-{tq.x86_backend(narrow)}"
    if tq.x86_backend(wide) == "onednn":
        pytest.skip("this CPU sends even 128 groups to oneDNN")  # pragma: no cover - not on a Linux x86 build
    assert "fbgemm" in unsupported_reason(torch_peer, wide)
    if tq.x86_backend(narrow) == "onednn":  # AVX-512 VNNI: groups <= 100 go to oneDNN, which is exact
        assert unsupported_reason(torch_peer, narrow) is None and _lsb("torch", narrow) <= 1


@needs_torch
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="oneDNN's verbose log is read on Linux")
def test_x86_engine_runs_the_library_convbench_names(tmp_path):
    """What oneDNN's own verbose log says ran, against x86_backend's reading of PyTorch's rule."""
    code = (
        "import sys, convbench\n"
        "from convbench.algorithms import torch_quantized as tq\n"
        "import torch\n"
        "g = int(sys.argv[1])\n"
        "s = convbench.ConvSpec(batch=1, in_channels=g, out_channels=g, height=6, width=6, kernel=3,"
        " padding=0, groups=g, dtype='u8s8')\n"
        "x, qw = s.random_inputs(0)\n"
        "call = tq.prepare(torch, s, qw, 'x86')\n"
        "print('MARK', tq.x86_backend(s), flush=True)\n"
        "call(x)\n"
    )
    env = {**os.environ, "ONEDNN_VERBOSE": "1", "PYTHONPATH": str(ROOT)}
    for groups in (8, 128):
        out = subprocess.run([sys.executable, "-c", code, str(groups)], capture_output=True, text=True, env=env,
                             timeout=300, cwd=ROOT).stdout
        named = out.split("MARK ")[1].split()[0]
        ran_onednn = any(l.startswith("onednn_verbose") and "convolution" in l and ",exec," in l
                         for l in out.split("MARK ")[1].splitlines())
        assert ran_onednn == (named == "onednn"), (groups, named, out[-2000:])


# -- threads, engines, names ---------------------------------------------------------------------


@needs_vnni
@needs_torch
def test_torch_peers_run_on_the_case_thread_count_and_leave_the_engine_as_found():
    import torch

    before_threads, before_engine = torch.get_num_threads(), torch.backends.quantized.engine
    spec = _spec()
    x, qw = spec.random_inputs(0)
    for name in TORCH_PEERS:
        with limit_threads(1):
            convbench.get_algorithm(name).prepare(spec, qw)(x)
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == before_threads
        assert torch.backends.quantized.engine == before_engine, name


@needs_vnni
@needs_ort
def test_onnxruntime_8bit_session_uses_the_case_thread_count():
    spec = _spec(layout="nhwc")
    with limit_threads(1):
        call = convbench.get_algorithm("onnxruntime").prepare(spec, spec.random_inputs(0)[1])
    opts = call.__wrapped__.session.get_session_options()
    assert opts.intra_op_num_threads == 1 and opts.inter_op_num_threads == 1


@needs_torch
def test_qnnpack_names_the_micro_kernel_qnnpack_picks():
    qnnpack = convbench.get_algorithm("qnnpack")
    isa = "neon" if os.uname().machine.startswith(("arm", "aarch")) else "sse2"
    assert qnnpack.implementation(_spec()) == f"qnnpack:conv-indirect-{isa}"
    assert qnnpack.implementation(_spec(kernel=1, padding=0)) == f"qnnpack:gemm-{isa}"
    assert qnnpack.implementation(_spec(in_channels=8, out_channels=8, groups=8)) == f"qnnpack:dwconv-{isa}"
    # a channel multiplier of 2 is not QNNPACK's depthwise kernel: the indirect one runs it
    assert qnnpack.implementation(_spec(in_channels=8, out_channels=16, groups=8)) == f"qnnpack:conv-indirect-{isa}"
    assert convbench.get_algorithm("onednn").implementation(_spec()) == "onednn:quantized"
    assert convbench.get_algorithm("fbgemm").implementation(_spec()) == "fbgemm:quantized"


@needs_vnni
@needs_ort
@pytest.mark.parametrize("layout, name", [("nchw", "onnxruntime:mlas-qlinearconv-nhwc+transposes"),
                                          ("nhwc", "onnxruntime:mlas-qlinearconv-nhwc")])
def test_onnxruntime_says_whether_it_transposed(layout, name):
    ort = convbench.get_algorithm("onnxruntime")
    spec = _spec(layout=layout)
    with limit_threads(1):
        ort.prepare(spec, spec.random_inputs(0)[1])
        assert ort.implementation(spec) == name


@needs_vnni
def test_8bit_peer_rows_in_a_sweep_name_what_ran_and_measure_memory_from_the_resident_set(tmp_path):
    from convbench.config import parse_config
    from convbench.results import read_results
    from convbench.sweep.plan import plan
    from convbench.sweep.session import run
    from convbench.timing import TimingSettings

    config = parse_config(
        f"name: q8\nalgorithms: [naive, {', '.join(PEERS_8BIT)}]\nbaseline: naive\nlayers:\n"
        "  - {name: c3, in_channels: 8, out_channels: 16, size: 6, kernel: 3, padding: 1, layout: [nhwc, nchw], dtype: u8s8}\n"
        "  - {name: dw, channels: 16, depthwise: true, size: 6, kernel: 3, padding: 1, layout: nhwc, dtype: u8s8}\n",
        "q8.yaml")
    p = plan(config)
    p.timing = TimingSettings(min_samples=3, min_time_s=0.0, max_time_s=0.2, target_ci=None, min_sample_time_s=0.0)
    run(p, tmp_path / "run", isolation=False)
    s = read_results(tmp_path / "run").summary
    peers = s[s["algorithm"].isin(PEERS_8BIT)]
    by = {(r["layer"], r["layout"], r["algorithm"]): r for r in peers.to_dict("records")}
    for r in peers.to_dict("records"):
        if (r["layer"], r["algorithm"]) == ("dw", "fbgemm"):
            assert r["status"] == "skipped" and "saturating int16" in r["reason"]
            continue
        assert r["status"] == "ok" and r["max_abs_err_lsb"] <= 1, r
        assert r["memory_method"].startswith("rss") and r["implementation"].startswith(f"{r['algorithm']}:"), r
    if "qnnpack" in PEERS_8BIT:
        assert by[("dw", "nhwc", "qnnpack")]["implementation"].startswith("qnnpack:dwconv-")
        assert by[("c3", "nchw", "qnnpack")]["implementation"].startswith("qnnpack:conv-indirect-")
