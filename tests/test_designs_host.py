"""`linjax.designs.host`: numeric columns reach JAX with one copy (an aligned buffer that
`jax.device_put` uses in place on CPU)."""

import jax
import numpy as np
import pytest

from linjax.designs.host import aligned_empty, stacked_columns


def test_aligned_buffers_are_used_in_place_and_columns_stack_as_numpy():
    A = aligned_empty((1000, 3))
    assert A.ctypes.data % 64 == 0 and A.shape == (1000, 3) and A.dtype == np.float64
    A[...] = np.arange(3000.0).reshape(1000, 3)
    if jax.default_backend() != "cpu":
        pytest.skip("in-place use is the CPU backend's")
    assert jax.device_put(A).unsafe_buffer_pointer() == A.ctypes.data
    cols = [np.arange(7.0), np.linspace(0, 1, 7), np.ones(7, np.int64)]
    out = stacked_columns(cols, np.float64)
    np.testing.assert_array_equal(np.asarray(out), np.column_stack(cols))
    assert out.dtype == np.float64
