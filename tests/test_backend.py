"""The backend layer: scatter-add against ``np.add.at``, moving arrays to the host, dtype names,
random numbers, which backends exist, and what asking for a missing one says."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import array_api_compat.numpy
import numpy as np
import pytest

import minitransformer as mt
from minitransformer.backend import BackendError, CounterRNG, dtype_name


# ------------------------------------------------------------------ scatter-add
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "target_shape, indices",
    [
        ((5,), [1, 4, 1, 1, 0]),  # repeated ids add up; id 2 and 3 stay 0
        ((4, 3), [3, 0, 3, 2, 3]),  # rows of an embedding table
        ((3, 2, 2), [2, 2, 0]),  # multi-dimensional rows
        ((6, 2), [5]),
        ((4, 3), []),  # nothing to add: zeros
    ],
)
def test_scatter_add_matches_numpy_add_at(backend, target_shape, indices, dtype, rng):
    values = rng.standard_normal((len(indices),) + target_shape[1:]).astype(dtype)
    ids = np.asarray(indices, dtype=np.int64)
    out = backend.scatter_add(target_shape, backend.asarray(ids), backend.asarray(values))
    want = np.zeros(target_shape, dtype=dtype)
    np.add.at(want, ids, values)
    assert backend.owns(out)
    host = backend.to_host(out)
    assert host.shape == target_shape and host.dtype == np.dtype(dtype)
    np.testing.assert_allclose(host, want, rtol=1e-6 if dtype == "float32" else 1e-12)


# ------------------------------------------------------------------ moving to the host, arrays
def test_to_host_gives_numpy(backend):
    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    array = backend.asarray(values)
    assert backend.owns(array)
    host = backend.to_host(array)
    assert isinstance(host, np.ndarray)
    np.testing.assert_array_equal(host, values)
    assert isinstance(backend.to_host(values), np.ndarray)  # host arrays pass through


def test_to_host_takes_a_read_only_view(backend):
    """Broadcasting makes read-only views. NumPy 2.0 refuses to take one by DLPack ("Cannot export readonly array"),
    the way array-api-strict's arrays come to the host."""
    view = backend.xp.broadcast_to(backend.asarray([1.0, 2.0]), (3, 2))
    np.testing.assert_array_equal(backend.to_host(view), [[1.0, 2.0]] * 3)


def test_asarray_with_dtype(backend):
    array = backend.asarray([[1, 2], [3, 4]], dtype="float64")
    assert dtype_name(array.dtype) == "float64" and tuple(array.shape) == (2, 2)
    assert dtype_name(backend.asarray([1, 2]).dtype) == "int64"


def test_owns_only_its_own_arrays(backend):
    other = mt.backend.get("array_api_strict" if backend.name == "numpy" else "numpy")
    assert not backend.owns(other.asarray([1.0]))
    assert not backend.owns([1.0])


# ------------------------------------------------------------------ dtypes
@pytest.mark.parametrize("name", ["float32", "float64", "float16", "int64", "int32", "int8", "uint8", "bool"])
def test_dtype_names_round_trip(backend, name):
    if name == "float16" and backend.name == "array_api_strict":  # not in the array API standard
        with pytest.raises(TypeError, match="dtype float16 is not available on backend 'array_api_strict'"):
            backend.dtype(name)
        return
    dtype = backend.dtype(name)
    assert dtype_name(dtype) == name
    assert backend.dtype(dtype) == dtype  # a dtype object is accepted too
    assert dtype_name(backend.xp.zeros(1, dtype=dtype).dtype) == name


def test_dtype_default_is_float32(backend):
    assert dtype_name(backend.dtype(None)) == "float32" == mt.backend.DEFAULT_FLOAT


def test_dtype_from_another_backend(backend):
    other = mt.backend.get("array_api_strict" if backend.name == "numpy" else "numpy")
    assert dtype_name(backend.dtype(other.dtype("float64"))) == "float64"


def test_unknown_dtype(backend):
    with pytest.raises(TypeError, match=r"unknown dtype 'float128'; expected one of float32, float64"):
        backend.dtype("float128")
    with pytest.raises(TypeError, match=r"unknown dtype 1; expected one of float32"):  # not a dtype NumPy reads
        backend.dtype(1)


# ------------------------------------------------------------------ random numbers
def test_random_numbers(backend):
    backend.manual_seed(5)
    normal = backend.to_host(backend.normal((2000,), mean=1.0, std=2.0, dtype="float64"))
    uniform = backend.to_host(backend.uniform((3, 4), low=-1.0, high=1.0))
    ints = backend.to_host(backend.integers((50,), 3, 7))
    assert normal.dtype == np.float64 and uniform.dtype == np.float32 and ints.dtype == np.int64
    assert abs(normal.mean() - 1.0) < 0.2 and abs(normal.std() - 2.0) < 0.2  # ~ 6 standard errors
    assert uniform.shape == (3, 4) and ((uniform >= -1) & (uniform < 1)).all()
    assert set(ints.tolist()) <= {3, 4, 5, 6}
    backend.manual_seed(5)
    np.testing.assert_array_equal(backend.to_host(backend.normal((2000,), mean=1.0, std=2.0, dtype="float64")), normal)
    # mt.randn draws N(0, 1) (the backend's normal without mean and std): ~ 7 standard errors
    standard = mt.randn(20_000, dtype="float64", backend=backend).numpy()
    assert abs(standard.mean()) < 0.05 and abs(standard.std() - 1.0) < 0.04


def test_rng_state_round_trip(backend):
    state = backend.get_rng_state()
    json.dumps(state)  # plain data: it goes into a checkpoint as it is
    first = backend.to_host(backend.uniform((4,)))
    backend.set_rng_state(state)
    np.testing.assert_array_equal(backend.to_host(backend.uniform((4,))), first)


def test_permutation(backend):
    p = backend.permutation(10)
    assert isinstance(p, np.ndarray) and sorted(p.tolist()) == list(range(10))
    backend.manual_seed(3)
    first = backend.permutation(10)
    backend.manual_seed(3)
    np.testing.assert_array_equal(backend.permutation(10), first)  # seeded: the same order again
    if backend.rng_kind == "PCG64":  # on the CPU backends, NumPy's generator: its own permutation
        np.testing.assert_array_equal(first, np.random.default_rng(3).permutation(10))


def _pcg64_state_before_draw(index: int) -> dict:
    """NumPy's generator seeded with 0, moved on to just before its draw ``index`` (one 64-bit word per float64)."""
    rng = np.random.default_rng(0)
    rng.bit_generator.advance(index)
    return rng.bit_generator.state


# the draws that float32 rounds up to 1.0 (above 1 - 2^-25): found by scanning each stream once
_PCG64_SEED0_NEAR_1 = 14_817_372  # 0.9999999984...
_COUNTER_SEED0_NEAR_1 = 1_869_153  # 0.99999997963...


@pytest.mark.single_backend
def test_float32_uniforms_stay_below_high():
    """U[low, high) holds after the cast to float32, on NumPy's generator and on the GPU's (the CounterRNG)."""
    from minitransformer.nn import init

    # NumPy stands in for CuPy, through array_api_compat as CuPy is (NumPy 2.0's own clip takes no max=)
    cpu, gpu = mt.backend.get("numpy"), mt.backend.Backend("cupy", array_api_compat.numpy, native=np)
    for be, state in ((cpu, _pcg64_state_before_draw(_PCG64_SEED0_NEAR_1)),
                      (gpu, {"bit_generator": "CounterRNG", "seed": 0, "counter": _COUNTER_SEED0_NEAR_1})):
        be.set_rng_state(state)
        assert be.uniform((1,), dtype="float64")[0] > 1 - 2**-25  # the draw float32 would round to 1.0
        be.set_rng_state(state)
        assert be.to_host(be.uniform((1,)))[0] == np.nextafter(np.float32(1), np.float32(0))  # 1 - 2^-24
    cpu.set_rng_state(_pcg64_state_before_draw(_PCG64_SEED0_NEAR_1))
    w = init.uniform_(mt.zeros(1, backend=cpu), 1.0, 2.0).numpy()  # 1.9999999984 in float64
    assert w[0] == np.nextafter(np.float32(2), np.float32(0))


# ------------------------------------------------------------------ choosing a backend
@pytest.mark.single_backend
def test_available_backends():
    names = mt.backend.available()
    assert "numpy" in names and "array_api_strict" in names
    assert all(mt.backend.get(n).name == n for n in names)


@pytest.mark.single_backend
@pytest.mark.parametrize("alias, name", [("np", "numpy"), ("CPU", "numpy"), ("strict", "array_api_strict"),
                                         ("array-api-strict", "array_api_strict")])
def test_aliases(alias, name):
    assert mt.backend.get(alias) is mt.backend.get(name)


def test_unknown_backend():
    before = mt.backend.current()
    with pytest.raises(BackendError, match=r"unknown backend 'tpu'; choose one of 'numpy', 'cupy'"):
        mt.backend.use("tpu")
    assert mt.backend.current() is before


@pytest.mark.single_backend
@pytest.mark.parametrize("value", ["bogus", "cupy"])
def test_a_bad_environment_backend_fails_only_where_it_is_used(value, monkeypatch):
    """An explicit choice never reads MINITRANSFORMER_BACKEND; its value is checked when it picks the backend."""
    if value == "cupy" and "cupy" in mt.backend.available():
        pytest.skip("CuPy works here: MINITRANSFORMER_BACKEND=cupy is not a bad value")
    monkeypatch.setenv("MINITRANSFORMER_BACKEND", value)
    monkeypatch.setattr(mt.backend, "_current", None)  # as in a fresh process: nothing chosen yet
    mt.manual_seed(3)
    mt.backend.use("numpy")
    assert mt.backend.current().name == "numpy"
    with mt.backend.use("strict") as be:
        assert mt.zeros(1).backend is be
    mt.backend._current = None
    with pytest.raises(BackendError, match=f"MINITRANSFORMER_BACKEND='{value}'"):
        mt.zeros(1)


@pytest.mark.single_backend
def test_the_environment_backend_may_have_spaces(monkeypatch):
    monkeypatch.setenv("MINITRANSFORMER_BACKEND", " strict\n")
    monkeypatch.setattr(mt.backend, "_current", None)
    assert mt.backend.current().name == "array_api_strict"


@pytest.mark.single_backend
def test_manual_seed_applies_to_backends_made_later(monkeypatch):
    monkeypatch.setattr(mt.backend, "_BACKENDS", {k: v for k, v in mt.backend._BACKENDS.items() if k != "numpy"})
    mt.manual_seed(42)
    later = mt.backend.get("numpy")  # a new Backend, made after the seed
    assert later is not mt.backend.current()
    np.testing.assert_array_equal(later.to_host(later.uniform((3,), dtype="float64")),
                                  np.random.default_rng(42).random(3))


@pytest.mark.parametrize("seed, error", [(-1, ValueError), (1.5, TypeError), ("a", TypeError), (True, TypeError)])
def test_manual_seed_refuses_what_is_not_a_seed(seed, error, backend):
    # -1 and "a" failed inside NumPy; 1.5 silently seeded 1
    for seed_it in (mt.manual_seed, backend.manual_seed):
        with pytest.raises(error, match=rf"manual_seed: seed must be an integer >= 0, got {seed!r}"):
            seed_it(seed)
    mt.manual_seed(np.int64(7))  # a NumPy integer is a seed


def test_new_generator_is_the_backends_kind_and_apart_from_its_generator(backend):
    """be.new_generator(s) draws what manual_seed(s) makes the backend draw (uniform, normal, integers), without
    moving the backend's own generator; a bad seed is refused by the caller's name."""
    backend.manual_seed(5)
    expected = [backend.to_host(backend.uniform((4,))), backend.to_host(backend.normal((3,))),
                backend.to_host(backend.integers((3,), 0, 9))]
    backend.manual_seed(8)
    state = backend.get_rng_state()
    rng = backend.new_generator(5)
    got = [backend.to_host(backend.uniform((4,), rng=rng)), backend.to_host(backend.normal((3,), rng=rng)),
           backend.to_host(backend.integers((3,), 0, 9, rng=rng))]
    for name, g, e in zip(("uniform", "normal", "integers"), got, expected):
        np.testing.assert_array_equal(g, e, err_msg=f"{name} from new_generator(5) vs after manual_seed(5)")
    assert backend.get_rng_state() == state, "drawing from new_generator(5) moved the backend's generator"
    assert type(rng).__name__ == {"PCG64": "Generator"}.get(backend.rng_kind, backend.rng_kind)
    with pytest.raises(ValueError, match=r"generate: seed must be an integer >= 0, got -2"):
        backend.new_generator(-2, op="generate")


@pytest.mark.single_backend
def test_the_numpy_backend_without_array_api_compat_says_what_to_install(monkeypatch):
    """A checkout on PYTHONPATH without pip's install of the requirements: the first tensor failed with a bare
    "No module named 'array_api_compat'" from inside backend.py."""
    monkeypatch.setitem(sys.modules, "array_api_compat", None)  # None: the import fails, as if not installed
    monkeypatch.setitem(sys.modules, "array_api_compat.numpy", None)
    with pytest.raises(ImportError, match=r"^backend 'numpy' needs the array-api-compat package \(NumPy's array API "
                                          r"namespace\), which pip installs with minitransformer: pip install "
                                          r"array-api-compat$"):
        mt.backend._make("numpy")


@pytest.mark.single_backend
def test_use_nests_and_restores_after_an_exception():
    numpy, strict = mt.backend.get("numpy"), mt.backend.get("strict")
    mt.backend.use(numpy)
    with mt.backend.use(strict) as be:
        assert be is strict and mt.backend.current() is strict
        with mt.backend.use(numpy):
            assert mt.backend.current() is numpy
        assert mt.backend.current() is strict
    assert mt.backend.current() is numpy
    with pytest.raises(KeyError), mt.backend.use(strict):
        raise KeyError
    assert mt.backend.current() is numpy
    mt.backend.use(strict)  # a plain call switches at once, and for good
    assert mt.backend.current() is strict


@pytest.mark.single_backend
def test_a_kept_use_object_switches_each_time_its_block_starts():
    numpy, strict = mt.backend.get("numpy"), mt.backend.get("strict")
    to_strict = mt.backend.use(strict)
    mt.backend.use(numpy)
    for _ in range(2):  # entered after another switch, then again after its own block
        with to_strict as be:
            assert be is strict and mt.backend.current() is strict
            with to_strict:  # re-entered inside its own block
                assert mt.backend.current() is strict
            assert mt.backend.current() is strict
        assert mt.backend.current() is numpy
    with pytest.raises(ValueError), to_strict:
        raise ValueError
    assert mt.backend.current() is numpy


@pytest.mark.single_backend
def test_missing_cupy_says_how_to_install(monkeypatch):
    """Where CuPy is not importable (hidden here even on a GPU machine), asking for it names the extra, as the
    README installs it (from the clone), and the README's section that says more."""
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` now raises ImportError
    monkeypatch.delitem(sys.modules, "array_api_compat.cupy", raising=False)
    monkeypatch.setattr(mt.backend, "_BACKENDS", {k: v for k, v in mt.backend._BACKENDS.items() if k != "cupy"})
    before = mt.backend.current()
    for ask in (lambda: mt.backend.get("cupy"), lambda: mt.backend.use("gpu"), lambda: mt.zeros(2).to("cuda")):
        with pytest.raises(BackendError, match=r"pip install -e '\.\[cuda12\]'") as err:
            ask()
    assert mt.backend.current() is before
    section = re.search(r"see '(.+)' in the README", str(err.value)).group(1)
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert f"\n## {section}\n" in readme  # a heading that exists (it said "the README's GPU section": none)
    assert "cupy" not in mt.backend.available()


@pytest.mark.single_backend
@pytest.mark.parametrize("setting", [None, "0", "1"])
@pytest.mark.needs("minitransformer/kernels.py")
def test_cuda_kernels_are_used_on_cupy_unless_turned_off(setting, monkeypatch):
    """The CuPy backend has its kernels unless MINITRANSFORMER_KERNELS=0 (a stand-in CuPy with one GPU here)."""
    import types

    from minitransformer.kernels import CudaKernels

    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 1)))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setitem(sys.modules, "array_api_compat.cupy", array_api_compat.numpy)
    if setting is None:
        monkeypatch.delenv("MINITRANSFORMER_KERNELS", raising=False)
    else:
        monkeypatch.setenv("MINITRANSFORMER_KERNELS", setting)
    gpu = mt.backend._make("cupy")
    assert gpu.name == "cupy" and gpu.native is fake
    if setting != "0":
        assert isinstance(gpu.kernels, CudaKernels) and gpu.kernels.cupy is fake
    else:
        assert gpu.kernels is None
    # the CPU backends are made without (pytest --emulated-kernels gives the numpy backend emulated ones later)
    assert mt.backend._make("numpy").kernels is None and mt.backend._make("array_api_strict").kernels is None


def test_backend_repr_and_namespace(backend):
    assert repr(backend) == f"Backend({backend.name!r})"
    namespace = {"numpy": "array_api_compat.numpy", "array_api_strict": "array_api_strict",
                 "cupy": "array_api_compat.cupy"}[backend.name]
    assert backend.xp.__name__ == namespace


@pytest.mark.single_backend
def test_values_are_checked_at_once_on_numpy_only():
    """check_values: on NumPy a bad token id is refused where it is used; on CuPy (and array-api-strict, its
    stand-in) it is checked on the device and read later, so that a training step never waits for the GPU."""
    assert mt.backend._make("numpy").check_values is True
    assert mt.backend._make("array_api_strict").check_values is False


@pytest.mark.single_backend
@pytest.mark.parametrize("setting, tf32", [(None, False), ("", False), ("0", False), ("1", True), ("2", True)])
def test_tf32_is_requested_by_a_positive_cupy_tf32(setting, tf32, monkeypatch):
    """CuPy's own rule for its float32 products: CUPY_TF32 set to a positive number turns TF32 on."""
    if setting is None:
        monkeypatch.delenv("CUPY_TF32", raising=False)
    else:
        monkeypatch.setenv("CUPY_TF32", setting)
    assert mt.backend.tf32_requested() is tf32


# ------------------------------------------------------------------ the counter-based generator (the GPU's)
def _splitmix64(seed: int, n: int) -> list[int]:
    """SplitMix64 (Steele, Lea, Flood 2014) as published, in Python integers: n outputs after ``seed``."""
    out, state, mask = [], seed, 2**64 - 1
    for _ in range(n):
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        out.append(z ^ (z >> 31))
    return out


def test_counter_rng_is_splitmix64_keyed_by_the_mixed_seed(backend):
    rng = CounterRNG(backend.xp, seed=7)
    words = [int(w) for w in backend.to_host(rng.bits(5)).tolist()]
    assert words == _splitmix64(CounterRNG.mix(7), 5)
    assert _splitmix64(0, 1) == [0xE220A8397B1DCDAF]  # the published first output for seed 0
    # made without a seed: seed 0, whose key mix(0) is 0, so the stream is SplitMix64's own from 0
    assert [int(w) for w in backend.to_host(CounterRNG(backend.xp).bits(1)).tolist()] == [0xE220A8397B1DCDAF]
    assert [int(w) for w in backend.to_host(rng.bits(2)).tolist()] == _splitmix64(CounterRNG.mix(7), 7)[5:]


def test_counter_rng_draws_the_same_numbers_on_every_backend(backend):
    here = CounterRNG(backend.xp, seed=3)
    reference = CounterRNG(np, seed=3)
    np.testing.assert_array_equal(backend.to_host(here.random((4, 5))), reference.random((4, 5)))
    np.testing.assert_array_equal(backend.to_host(here.standard_normal((7,))), reference.standard_normal((7,)))
    np.testing.assert_array_equal(backend.to_host(here.integers(2, 9, (6,))), reference.integers(2, 9, (6,)))


def test_counter_rng_distributions():
    rng = CounterRNG(np, seed=11)
    u = rng.random((200_000,))
    assert u.dtype == np.float64 and 0.0 <= u.min() and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.005 and abs(u.var() - 1 / 12) < 0.002
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.01  # consecutive draws look independent
    z = rng.standard_normal((200_000,))
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1.0) < 0.01 and abs((z**3).mean()) < 0.03
    k = rng.integers(3, 7, (40_000,))
    assert k.dtype == np.int64 and set(np.unique(k).tolist()) == {3, 4, 5, 6}
    assert np.abs(np.bincount(k)[3:] / 40_000 - 0.25).max() < 0.01
    other = CounterRNG(np, seed=12).random((200_000,))  # the neighbouring seed: another stream, not a shift
    assert abs(np.corrcoef(u, other)[0, 1]) < 0.01 and not np.isin(u[:1000], other).any()


def test_counter_rng_uniform_and_normal_follow_their_formulas():
    u = CounterRNG(np, seed=9).random((6, 4))  # the stream's uniforms, four at a time
    rng = CounterRNG(np, seed=9)
    np.testing.assert_array_equal(rng.uniform(size=(4,)), u[0])  # U[0, 1) by default: the uniforms themselves
    np.testing.assert_allclose(rng.uniform(-2.0, 3.0, size=(4,)), -2.0 + 5.0 * u[1], rtol=1e-15)  # low + (high - low) u
    # Box-Muller, as documented: sqrt(-2 ln(1 - u_1)) cos(2 pi u_2), two uniforms per sample and no more
    for first in (2, 4):
        want = np.sqrt(-2.0 * np.log(1.0 - u[first])) * np.cos(2.0 * np.pi * u[first + 1])
        np.testing.assert_allclose(rng.standard_normal((4,)), want, rtol=1e-12)
    assert rng.state["counter"] == 24


def test_counter_rng_state_is_two_integers_and_resumes_the_stream():
    rng = CounterRNG(np, seed=5)
    rng.random((10,))
    state = rng.state
    assert state == {"bit_generator": "CounterRNG", "seed": 5, "counter": 10}
    assert json.loads(json.dumps(state)) == state
    after = rng.standard_normal((3,))
    fresh = CounterRNG(np, seed=0)
    fresh.state = state
    np.testing.assert_array_equal(fresh.standard_normal((3,)), after)
    with pytest.raises(BackendError, match="not a CounterRNG state"):
        fresh.state = {"bit_generator": "PCG64", "state": {}}


def test_the_gpu_backend_draws_from_the_counter_rng_and_saves_its_state():
    """The wiring of the CuPy backend, run here with NumPy standing in for CuPy's arrays."""
    gpu = mt.backend.Backend("cupy", array_api_compat.numpy, native=np)
    assert isinstance(gpu.rng, CounterRNG)
    gpu.manual_seed(4)
    state = gpu.get_rng_state()
    first = gpu.uniform((3,), dtype="float32")
    assert first.dtype == np.float32
    gpu.set_rng_state(state)
    np.testing.assert_array_equal(gpu.uniform((3,), dtype="float32"), first)
    np.testing.assert_array_equal(first, CounterRNG(np, 4).random((3,)).astype(np.float32))
    assert sorted(gpu.permutation(10).tolist()) == list(range(10))  # random keys sorted: CounterRNG has no permutation


def test_the_strict_backend_draws_from_the_gpus_generator_as_array_operations(backend):
    """array-api-strict stands in for CuPy in CI: it draws from the same CounterRNG (without the kernel, as array
    operations), so a seed gives CuPy's numbers there, not NumPy's, and a test that counts on NumPy's fails in CI."""
    if backend.name == "numpy":
        assert backend.rng_kind == "PCG64"
        return
    backend.manual_seed(5)
    assert backend.rng_kind == "CounterRNG" and backend.get_rng_state()["seed"] == 5
    np.testing.assert_array_equal(backend.to_host(backend.uniform((4,), dtype="float64")),
                                  CounterRNG(np, 5).random((4,)))
    assert sorted(backend.permutation(10).tolist()) == list(range(10))


def test_the_strict_backends_arrays_refuse_numpys_implicit_conversion_as_cupys_do(backend):
    """array-api-strict's arrays are made on its "device1": like CuPy's, np.asarray of one fails, so a host read that
    bypasses to_host (.numpy()) fails in CI too; a device asked for explicitly is kept."""
    if backend.name != "array_api_strict":
        pytest.skip("NumPy's arrays are host arrays; CuPy's refuse the conversion on their own")
    import array_api_strict

    made = [backend.xp.zeros((2,)), backend.xp.arange(3), backend.asarray(np.ones(2)), mt.randn(3).data,
            mt.tensor([1, 2]).data, (mt.ones(2) * 3.0).data]
    for array in made:
        with pytest.raises(RuntimeError, match="Can't convert array on the 'array_api_strict.Device\\('device1'\\)'"):
            np.asarray(array)
    np.testing.assert_array_equal(mt.tensor([1.0, 2.0]).numpy(), [1.0, 2.0])  # the way to the host
    cpu = array_api_strict.Device("CPU_DEVICE")
    assert backend.xp.zeros((2,), device=cpu).device == cpu


def test_a_state_of_another_generator_is_refused_by_name():
    gpu = mt.backend.Backend("cupy", array_api_compat.numpy, native=np)
    cpu = mt.backend.get("numpy")
    with pytest.raises(BackendError, match=r"the cupy backend's generator is CounterRNG, this state is of PCG64"):
        gpu.set_rng_state(cpu.get_rng_state())
    with pytest.raises(BackendError, match=r"the numpy backend's generator is PCG64, this state is of CounterRNG"):
        cpu.set_rng_state(gpu.get_rng_state())


@pytest.mark.single_backend
def test_numpy_1_is_refused_at_import_saying_why():
    """setup.cfg asks numpy>=2.0; a NumPy 1 that got in anyway (pip install --no-deps, a conda environment) is named at
    import, before a float32 loss turns float64 under its promotion rules and training stops on a dtype error."""
    from minitransformer.backend import _require_numpy_2

    with pytest.raises(ImportError, match=r"needs NumPy 2\.0 or later, found 1\.26\.4: .* pip install -U 'numpy>=2'"):
        _require_numpy_2("1.26.4")
    for version in ("2.0.0", "2.4.6", "3.0.0.dev0+git20270101"):
        _require_numpy_2(version)
