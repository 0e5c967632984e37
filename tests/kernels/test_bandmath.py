from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from minjiang.kernels.bandmath import Expression, band_math, compile_expression

# expression -> the same computation written directly with NumPy
CASES = {
    "(nir - red) / (nir + red)": lambda nir, red, blue: (nir - red) / (nir + red),
    "2.5 * (nir - red) / (nir + 6 * red - 7.5 * blue + 1)": lambda nir, red, blue: (
        2.5 * (nir - red) / (nir + 6 * red - 7.5 * blue + 1)
    ),
    "nir / red": lambda nir, red, blue: nir / red,
    "-nir ** 2 + red ** 0.5": lambda nir, red, blue: -(nir**2) + red**0.5,
    "sqrt(abs(nir)) + exp(-red) - log(abs(blue)) + log10(abs(nir) + 1)": lambda nir, red, blue: (
        np.sqrt(np.abs(nir)) + np.exp(-red) - np.log(np.abs(blue)) + np.log10(np.abs(nir) + 1)
    ),
    "minimum(nir, red) + maximum(red, blue)": lambda nir, red, blue: (
        np.minimum(nir, red) + np.maximum(red, blue)
    ),
    "where(nir > red, nir, blue)": lambda nir, red, blue: np.where(nir > red, nir, blue),
    "where(isnan(nir), 0, nir) + isfinite(red)": lambda nir, red, blue: (
        np.where(np.isnan(nir), 0, nir) + np.isfinite(red)
    ),
    "clip(nir, -0.5, red)": lambda nir, red, blue: np.clip(nir, -0.5, red),
    "(nir >= red) * 2 + (red != blue) - (nir == nir)": lambda nir, red, blue: (
        (nir >= red) * 2.0 + (red != blue) - (nir == nir)
    ),
    "where(nir <= 0, nan, nir) * pi + 0 * inf": lambda nir, red, blue: (
        np.where(nir <= 0, np.nan, nir) * np.pi + 0 * np.inf
    ),
}


def _bands(rng: np.random.Generator, shape, dtype) -> dict[str, np.ndarray]:
    bands = {k: rng.standard_normal(shape).astype(dtype) for k in ("nir", "red", "blue")}
    flat = {k: v.reshape(-1) for k, v in bands.items()}
    if flat["nir"].size >= 6:  # special values: NaN, inf, zeros (x / 0, log(0))
        flat["nir"][0] = np.nan
        flat["red"][1] = np.inf
        flat["blue"][2] = -np.inf
        flat["red"][3] = 0.0
        flat["nir"][3] = 0.0
        flat["blue"][4] = 0.0
        flat["red"][5] = np.nan
    return bands


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("expr", list(CASES))
def test_band_math_matches_numpy(call, close, rng, expr, dtype):
    bands = _bands(rng, (6, 7), dtype)
    with np.errstate(all="ignore"):
        expected = np.asarray(CASES[expr](**bands), dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # x / 0 and log(0) must not warn
        got = call(band_math, expr, bands)
    assert got.dtype == dtype and got.shape == (6, 7)
    close(got, expected, dtype)


def test_dtype_rules(call):
    a32 = np.ones(4, np.float32)
    a64 = np.ones(4, np.float64)
    i16 = np.ones(4, np.int16)
    assert call(band_math, "a + b", {"a": a32, "b": a32}).dtype == np.float32
    assert call(band_math, "a + b", {"a": a32, "b": a64}).dtype == np.float64
    assert call(band_math, "a + b", {"a": a32, "b": i16}).dtype == np.float64
    assert call(band_math, "a + b", {"a": a32, "b": a32}, dtype="float64").dtype == np.float64
    # arrays the expression does not read do not count
    assert call(band_math, "a * 2", {"a": a32, "b": a64}).dtype == np.float32
    with pytest.raises(TypeError, match="dtype='int32' is not supported"):
        band_math("a", {"a": a32}, dtype="int32")


def test_integer_and_boolean_inputs(call, close):
    a = np.array([[1, 2], [3, 4]], dtype=np.uint8)
    mask = np.array([[True, False], [False, True]])
    got = call(band_math, "where(mask, a / 2, -a)", {"a": a, "mask": mask})
    close(got, np.where(mask, a / 2, -a.astype(np.float64)), np.float64)


@pytest.mark.parametrize("shape", [(0,), (3, 0), (1,), (1, 1), ()])
def test_empty_size_one_and_scalar_shapes(call, close, shape):
    a = np.full(shape, 2.0, np.float32)
    b = np.full(shape, 4.0, np.float32)
    got = call(band_math, "(a - b) / (a + b)", {"a": a, "b": b})
    assert got.shape == shape and got.dtype == np.float32
    close(got, np.full(shape, -1.0 / 3.0), np.float32)


def test_non_contiguous_views(call, close, rng):
    base = rng.standard_normal((8, 10))
    a = base[::2, ::-3]
    b = base.T[::3, 1::2].T
    assert a.shape == b.shape and not a.flags.c_contiguous and not b.flags.c_contiguous
    close(
        call(band_math, "a * b - sqrt(abs(a))", {"a": a, "b": b}),
        a * b - np.sqrt(np.abs(a)),
        np.float64,
    )


def test_result_is_a_new_array(call):
    a = np.arange(5.0)
    got = call(band_math, "a", {"a": a})
    np.testing.assert_array_equal(got, a)
    assert not np.shares_memory(got, a)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_out_is_filled_and_returned(rng, backend):
    bands = _bands(rng, (6, 7), np.float32)
    expr = "(nir - red) / (nir + red)"
    want = band_math(expr, bands, backend=backend)
    out = np.full((6, 7), -1.0, np.float32)
    got = band_math(expr, bands, backend=backend, out=out)
    assert got is out
    np.testing.assert_array_equal(out, want)
    wide = np.empty((6, 7), np.float64)
    assert band_math(expr, bands, dtype="float64", backend=backend, out=wide) is wide
    for bad, match in [
        (np.empty((6, 8), np.float32), r"needs a C-contiguous \(6, 7\) float32"),
        (np.empty((6, 7), np.float64), r"\(6, 7\) float64 array; the result needs"),
        (np.empty((7, 6), np.float32).T, "strided"),
        ([[0.0] * 7] * 6, "must be a NumPy array"),
    ]:
        with pytest.raises((TypeError, ValueError), match=match):
            band_math(expr, bands, backend=backend, out=bad)
    frozen = np.empty((6, 7), np.float32)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        band_math(expr, bands, backend=backend, out=frozen)


def test_expression_object():
    expr = compile_expression("sqrt(b) + a * b", ["a", "b", "c"])
    assert isinstance(expr, Expression)
    assert expr.names == ("b", "a")
    assert expr.source == "sqrt(b) + a * b"
    assert str(expr) == expr.source
    assert expr == compile_expression("sqrt(b) + a * b", ["c", "b", "a"])
    a, b = np.arange(1.0, 4.0), np.arange(4.0, 7.0)
    np.testing.assert_allclose(band_math(expr, {"a": a, "b": b}), np.sqrt(b) + a * b)


@pytest.mark.parametrize(
    ("expr", "match"),
    [
        ("a.real", "attribute access 'a.real'"),
        ("np.sqrt(a)", "call 'np.sqrt\\(a\\)'"),
        ("open(a)", "call 'open\\(a\\)'"),
        ("__import__('os')", "call"),
        ("a[0]", "subscript 'a\\[0\\]'"),
        ("(lambda: a)()", "call"),
        ("lambda: a", "lambda 'lambda: a'"),
        ("a + d", "unknown name 'd'"),
        ("a % 2", "operator 'a % 2'"),
        ("a // 2", "operator 'a // 2'"),
        ("a and b", "BoolOp expression 'a and b'"),
        ("a < b < 1", "chained comparison 'a < b < 1'"),
        ("'x' + a", "constant \"'x'\""),
        ("1j * a", "constant '1j'"),
        ("True * a", "constant 'True'"),
        ("sqrt(a, b)", "sqrt\\(\\) takes 1 argument"),
        ("sqrt(x=a)", "keyword"),
        ("a +", "cannot parse expression"),
        ("1 + 2", "reads no array"),
        ("[a for a in b]", "ListComp"),
    ],
)
def test_compile_expression_rejects(expr, match):
    with pytest.raises(ValueError, match=match):
        compile_expression(expr, ["a", "b"])


def test_compile_expression_rejects_bad_names():
    with pytest.raises(ValueError, match="'sqrt' is reserved"):
        compile_expression("sqrt + 1", ["sqrt"])
    with pytest.raises(ValueError, match="'2x' is not a valid identifier"):
        compile_expression("a", ["a", "2x"])
    with pytest.raises(ValueError, match="given more than once"):
        compile_expression("a", ["a", "a"])
    with pytest.raises(TypeError, match="not the string 'ab'"):
        compile_expression("a", "ab")


def test_band_math_rejects_bad_inputs():
    a = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"same shape, got a: \(2, 3\), b: \(3,\)"):
        band_math("a + b", {"a": a, "b": np.zeros(3)})
    with pytest.raises(ValueError, match="reads \\['b'\\], which are not among"):
        band_math(compile_expression("a + b", ["a", "b"]), {"a": a})
    with pytest.raises(TypeError, match="array 'a' has dtype 'complex128'"):
        band_math("a * 2", {"a": a.astype(complex)})
    with pytest.raises(TypeError, match="mapping"):
        band_math("a", [a])
    with pytest.raises(ValueError, match="unknown backend"):
        band_math("a", {"a": a}, backend="tpu")


def test_compiled_kernels_are_cached():
    from minjiang.kernels.bandmath import _cpu

    a = np.arange(3.0)
    band_math("a * 3 + 1", {"a": a}, backend="cpu")
    size = len(_cpu._KERNELS)
    band_math(compile_expression("a * 3 + 1", ["a", "b"]), {"a": a + 1}, backend="cpu")
    assert len(_cpu._KERNELS) == size
    band_math("a * 3 + 1", {"a": a.astype(np.float32)}, backend="cpu")
    assert len(_cpu._KERNELS) == size + 1  # new input dtype, new kernel


_NAMES = ("b1", "b2", "b3")
_LEAVES = st.sampled_from([*_NAMES, *_NAMES, "0.5", "2", "0"])


def _grow(children):
    binary = st.tuples(
        children, st.sampled_from(["+", "-", "*", "/", "**", "<", ">=", "=="]), children
    )
    unary = st.tuples(st.sampled_from(["-", "sqrt", "exp", "log", "abs", "isnan"]), children)
    ternary = st.tuples(st.sampled_from(["where", "clip"]), children, children, children)
    return st.one_of(
        binary.map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        unary.map(lambda t: f"{t[0]}({t[1]})"),
        ternary.map(lambda t: f"{t[0]}({t[1]}, {t[2]}, {t[3]})"),
    )


_EXPRESSIONS = st.recursive(_LEAVES, _grow, max_leaves=6).filter(
    lambda e: re.search(r"\bb[123]\b", e) is not None
)


@settings(max_examples=12, deadline=None)
@given(
    expr=_EXPRESSIONS,
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**32 - 1),
)
def test_fused_kernel_matches_reference(call, close, expr, dtype, seed):
    rng = np.random.default_rng(seed)
    arrays = {k: rng.uniform(-2, 2, 24).astype(dtype) for k in _NAMES}
    arrays["b1"][:3] = [np.nan, 0.0, np.inf]
    expected = band_math(expr, arrays, backend="reference")
    close(call(band_math, expr, arrays), expected, dtype)


def test_large_arrays_use_the_threaded_loop(close):
    import numba
    from minjiang.kernels.bandmath import _cpu

    n = _cpu._PARALLEL_MIN
    a = np.linspace(-1, 1, n, dtype=np.float32)
    b = np.linspace(2, 3, n, dtype=np.float32)
    got = band_math("(a - b) / (a + b)", {"a": a, "b": b}, backend="cpu")
    close(got, (a.astype(np.float64) - b) / (a.astype(np.float64) + b), np.float32)
    threaded = [key[-1] for key in _cpu._KERNELS if key[1] == ("<f4", "<f4")]
    assert threaded and threaded[-1] == (numba.get_num_threads() > 1)
