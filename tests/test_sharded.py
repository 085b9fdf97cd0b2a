"""Row-sharded fits equal the single-device fit: 4 simulated devices, and two processes.

Both run in subprocesses (the device count is fixed when JAX starts). The 4-device run
uses XLA_FLAGS=--xla_force_host_platform_device_count=4; the two-process run starts two
Python processes that meet through `jax.distributed.initialize` on 127.0.0.1 with gloo
collectives, each holding part of the rows. References are in-memory single-device fits.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import linjax as lj
from linjax.penalties import L2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N, P = 203, 3           # 203 rows: not divisible by 4 (nor by 2)


def data(family, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, P))
    w = rng.uniform(0.5, 2.0, N)
    o = rng.uniform(-0.2, 0.2, N)
    eta = 0.3 + X @ np.array([0.4, -0.3, 0.2]) + o
    y = {"gaussian": eta + rng.normal(scale=0.5, size=N),
         "binomial": (rng.random(N) < 1 / (1 + np.exp(-eta))).astype(float),
         "poisson": rng.poisson(np.exp(eta)).astype(float)}[family]
    return X, y, w, o


CASES = [(f, a) for f in ("gaussian", "binomial", "poisson") for a in (None, 0.1)]
# "auto" is LeastSquares (QR) for Gaussian and Newton for the others.
SOLVERS = {"gaussian": ("auto", "newton"), "binomial": ("auto",), "poisson": ("auto",)}


def env(**extra):
    e = dict(os.environ)
    e["PYTHONPATH"] = ROOT + os.pathsep + e.get("PYTHONPATH", "")
    e.pop("XLA_FLAGS", None)
    e.update(extra)
    return e


def reference(family, alpha, solver="auto"):
    X, y, w, o = data(family)
    pen = None if alpha is None else L2(alpha)
    r = lj.fit(X, y, family=family, penalty=pen, weights=w, offset=o, solver=solver)
    return np.r_[float(r.intercept), np.asarray(r.coef)]


FOUR_DEVICES = textwrap.dedent("""
    import json, sys
    import jax
    jax.config.update("jax_enable_x64", True)
    import numpy as np
    import linjax as lj
    from linjax.penalties import L2
    sys.path.insert(0, "tests")
    from test_sharded import CASES, SOLVERS, data
    assert jax.device_count() == 4, jax.devices()
    out = {}
    for family, alpha in CASES:
        for solver in SOLVERS[family]:
            X, y, w, o = data(family)
            Xs, ys, ws, os_ = lj.shard_rows(X, y, w, o, family=lj.families.get_family(family))
            assert len(Xs.sharding.device_set) == 4 and Xs.shape[0] == 204
            pen = None if alpha is None else L2(alpha)
            r = lj.fit(Xs, ys, family=family, penalty=pen, weights=ws, offset=os_,
                       solver=solver)
            out[f"{family}-{alpha}-{solver}"] = [float(r.intercept)] + \\
                np.asarray(r.coef).tolist() + [bool(r.converged)]
    print("RESULT" + json.dumps(out))
""")


def test_four_device_sharded_fit_equals_single_device():
    proc = subprocess.run(
        [sys.executable, "-c", FOUR_DEVICES], cwd=ROOT, capture_output=True, text=True,
        timeout=240, env=env(XLA_FLAGS="--xla_force_host_platform_device_count=4"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [s for s in proc.stdout.splitlines() if s.startswith("RESULT")][0]
    out = json.loads(line[len("RESULT"):])
    for family, alpha in CASES:
        for solver in SOLVERS[family]:
            got = out[f"{family}-{alpha}-{solver}"]
            assert got[-1], (family, alpha, solver)
            np.testing.assert_allclose(got[:-1], reference(family, alpha, solver), rtol=0,
                                       atol=1e-10, err_msg=f"{family} {alpha} {solver}")


WORKER = textwrap.dedent("""
    import json, sys
    import jax
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    pid, port, out_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2,
                               process_id=pid, initialization_timeout=60)
    import numpy as np
    import linjax as lj
    from linjax.penalties import L2
    sys.path.insert(0, "tests")
    from test_sharded import data
    assert jax.process_count() == 2 and jax.device_count() == 2
    out = {}
    for family, alpha in [("poisson", 0.1), ("binomial", None), ("gaussian", None)]:
        X, y, w, o = data(family)
        rows = slice(0, 90) if pid == 0 else slice(90, None)   # unequal halves: 90 and 113
        Xs, ys, ws, os_ = lj.shard_rows(X[rows], y[rows], w[rows], o[rows])
        assert not Xs.is_fully_addressable and Xs.shape[0] == 226
        pen = None if alpha is None else L2(alpha)
        r = lj.fit(Xs, ys, family=family, penalty=pen, weights=ws, offset=os_)
        out[f"{family}-{alpha}"] = [float(r.intercept)] + np.asarray(r.coef).tolist()
    if pid == 0:
        with open(out_path, "w") as f:
            json.dump(out, f)
    jax.distributed.shutdown()
""")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_fit_equals_single_device(tmp_path):
    out_path = tmp_path / "coef.json"
    port = str(free_port())
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(i), port, str(out_path)],
                              cwd=ROOT, env=env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    try:
        outputs = [p.communicate(timeout=180) for p in procs]
    except subprocess.TimeoutExpired:
        pytest.fail("the two-process fit did not finish within 180 s")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]
    out = json.loads(out_path.read_text())
    for family, alpha in [("poisson", 0.1), ("binomial", None), ("gaussian", None)]:
        np.testing.assert_allclose(out[f"{family}-{alpha}"], reference(family, alpha), rtol=0,
                                   atol=1e-10, err_msg=f"{family} {alpha}")
