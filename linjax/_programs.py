"""A bounded number of live compiled programs for linjax's own jitted functions.

Every XLA:CPU executable that stays alive keeps its code mapped into the process: about
265 memory mappings each, against Linux's default limit of 65,530 per process
(`vm.max_map_count`). A long session that fits many shapes would otherwise run into that
limit and crash inside XLA. linjax's top-level jitted functions are made with `jit` below,
which registers them; after a call that compiled something, the registry frees the
compiled programs of the least recently used functions while

- more than `max_programs()` programs are alive in the registered functions
  (LINJAX_MAX_PROGRAMS, default 128), or
- the process holds more than half its mapping limit (Linux only; read from /proc,
  and never taken above Linux's default of 65,530).

A freed program is compiled again (or read from the persistent cache) the next time its
shape is used. Programs a user compiles with their own `jax.jit` are never touched.
"""

import functools
import itertools
import os
import weakref

import jax

MAX_PROGRAMS_ENV = "LINJAX_MAX_PROGRAMS"
DEFAULT_MAX_PROGRAMS = 128
#: Free programs once the process holds this fraction of its memory-mapping limit.
MAP_FRACTION = 0.5

_registry = weakref.WeakSet()  # every live BoundedJit
_clock = itertools.count()


def max_programs():
    """The budget of live programs across linjax's registered functions."""
    try:
        return max(1, int(os.environ.get(MAX_PROGRAMS_ENV, DEFAULT_MAX_PROGRAMS)))
    except ValueError:
        return DEFAULT_MAX_PROGRAMS


def mapping_count():
    """Memory mappings of this process (None where /proc is not available)."""
    try:
        with open("/proc/self/maps", "rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return None


#: Linux's default `vm.max_map_count`.
DEFAULT_MAPPING_LIMIT = 65_530


@functools.cache
def mapping_limit():
    """The per-process mapping limit linjax keeps within: the kernel's, but no more than
    Linux's default (a raised limit does not let linjax's own programs grow past what a
    default machine allows). None where /proc is not available."""
    try:
        with open("/proc/sys/vm/max_map_count") as f:
            return min(int(f.read().strip()), DEFAULT_MAPPING_LIMIT)
    except (OSError, ValueError):
        return None


def live_programs():
    """Compiled programs alive in linjax's registered functions."""
    return sum(f.cache_size() for f in _registry)


#: XLA options for linjax's programs on CPU: the classic fusion emitter. XLA:CPU's MLIR
#: fusion emitters (jaxlib 0.10's default) build an MLIR context per fused kernel, and most
#: of a fit's ~150 kernels are small (scalars and p-vectors of the stopping tests and step
#: control): measured on a 2-core machine, compilation CPU time fell by 28% for the Poisson
#: fit (n = 200,000, p = 100) and by 33% for `cv_path`, with unchanged warm times
#: (`python -m benchmarks.first_call`). Dropped where the installed XLA does not know it.
CPU_COMPILER_OPTIONS = {"xla_cpu_use_fusion_emitters": False}

#: Programs whose largest argument has at most this many elements compile at XLA's backend
#: optimization level 0 on CPU. For data this small a fit runs in milliseconds either way,
#: and its first call is almost all compilation, which level 0 halves (LLVM's optimization
#: passes are most of XLA:CPU's compile time). Measured on a 2-core machine, a logistic fit of
#: n = 300, p = 4 (first call, cache off): 1.52 -> 0.92 CPU s, warm 1.58 -> 1.86 ms; at
#: n = 5,000, p = 20 the warm call would be 6.5 -> 13.5 ms, so larger data keeps the
#: optimizing compile. LINJAX_SMALL_PROGRAM_ELEMENTS sets the bound (0: always optimize).
SMALL_PROGRAM_ELEMENTS = 2**15
SMALL_PROGRAM_ENV = "LINJAX_SMALL_PROGRAM_ELEMENTS"
SMALL_PROGRAM_OPTIONS = {"xla_backend_optimization_level": 0}


def small_program_elements():
    """The bound on the largest argument's size below which programs compile at level 0."""
    try:
        return max(0, int(os.environ.get(SMALL_PROGRAM_ENV, SMALL_PROGRAM_ELEMENTS)))
    except ValueError:
        return SMALL_PROGRAM_ELEMENTS


def _size(leaf):
    """Elements of an argument; under an eager `vmap`, of the whole batch."""
    while hasattr(leaf, "batch_dim") and hasattr(leaf, "val"):  # a vmap tracer
        leaf = leaf.val
    return getattr(leaf, "size", 1)


def _is_small(args, kwargs):
    """Whether every array argument has at most `small_program_elements()` elements."""
    bound = small_program_elements()
    sizes = [_size(leaf) for leaf in jax.tree_util.tree_leaves((args, kwargs))]
    return bound > 0 and max(sizes, default=0) <= bound


def _under_jit():
    """Whether JAX is tracing a program (a `jit` anywhere in the trace stack), where a nested
    `jit` may not carry compiler options. True when this JAX cannot tell."""
    from jax._src import core  # JAX's own test; not public, hence the fallback

    probe = getattr(core, "unsafe_am_i_under_a_jit", None)
    try:
        return True if probe is None else bool(probe())
    except Exception:  # noqa: BLE001
        return True


_options_refused = False  # set when the installed XLA rejected CPU_COMPILER_OPTIONS


def compiler_options(small=False):
    """`CPU_COMPILER_OPTIONS` (with `SMALL_PROGRAM_OPTIONS` for a small program) when the
    default backend is the CPU (and XLA has not refused them: see `BoundedJit.__call__`)."""
    if _options_refused or jax.default_backend() != "cpu":
        return None
    return {**CPU_COMPILER_OPTIONS, **SMALL_PROGRAM_OPTIONS} if small else CPU_COMPILER_OPTIONS


def _refused_options(error):
    return "compile option" in str(error) and any(
        k in str(error) for k in (*CPU_COMPILER_OPTIONS, *SMALL_PROGRAM_OPTIONS))


class BoundedJit:
    """`jax.jit(fun, **options)`, registered so that its programs count against the budget.

    Calls go to the jitted function; attributes (`lower`, `trace`, `clear_cache`, ...) too.
    The jitted function is made at the first use (the compiler options depend on the
    backend, which importing linjax does not start).
    """

    def __init__(self, fun, **options):
        self._fun, self._options = fun, options
        self._made = self._made_small = None
        self._nested = jax.jit(fun, **options)  # inside a caller's trace: no options allowed
        self.last_used = next(_clock)
        functools.update_wrapper(self, fun)
        _registry.add(self)

    @property
    def _jitted(self):
        if self._made is None:
            self._made = self._make(small=False)
        return self._made

    @property
    def _jitted_small(self):
        if self._made_small is None:
            self._made_small = self._make(small=True)
        return self._made_small

    def _make(self, small):
        extra = compiler_options(small)
        return self._nested if extra is None else jax.jit(
            self._fun, compiler_options=extra, **self._options)

    def _call(self, args, kwargs):
        small = _is_small(args, kwargs)
        return (self._jitted_small if small else self._jitted)(*args, **kwargs)

    def __call__(self, *args, **kwargs):
        tracers = [leaf for leaf in jax.tree_util.tree_leaves((args, kwargs))
                   if isinstance(leaf, jax.core.Tracer)]
        if tracers:
            if _under_jit() or not all(hasattr(t, "batch_dim") for t in tracers):
                return self._nested(*args, **kwargs)  # the caller's program compiles it
            # an eager vmap: JAX compiles the batched program, and may take our options
            return self._call(args, kwargs)
        before = self.cache_size()
        try:
            out = self._call(args, kwargs)
        except Exception as error:  # noqa: BLE001  (an XLA without the option: its defaults)
            global _options_refused
            if not _refused_options(error):
                raise
            _options_refused = True
            for f in _registry:  # rebuilt at their next call, without the options
                f._made = f._made_small = None
            out = self._call(args, kwargs)
        self.last_used = next(_clock)
        if self.cache_size() > before:  # compiled (or loaded) a program: check the budget
            enforce_budget(keep=self)
        return out

    def __getattr__(self, name):
        return getattr(self._jitted, name)

    def cache_size(self):
        return sum(f._cache_size() for f in self._variants())

    def clear_cache(self):
        for f in self._variants():
            f.clear_cache()

    def _variants(self):
        """The jitted functions made so far (one object when the backend takes no options)."""
        made = [f for f in (self._made, self._made_small) if f is not None]
        return [f for i, f in enumerate(made) if all(f is not g for g in made[:i])]


def jit(fun=None, **options):
    """`jax.jit` for linjax's entry points, under the program budget; also a decorator
    factory: `@jit(static_argnames=(...))`."""
    if fun is None:
        return functools.partial(jit, **options)
    return BoundedJit(fun, **options)


def _over_mapping_limit():
    limit = mapping_limit()
    if limit is None:
        return False
    count = mapping_count()
    return count is not None and count > MAP_FRACTION * limit


def enforce_budget(keep=None):
    """Free the least recently used functions' programs until under budget.

    `keep` (the function just called) is freed last, and only when the count of programs
    is still over budget (never for the mapping limit alone, which programs outside linjax
    may hold: freeing the one in use would only compile it again). Returns the number of
    programs freed.
    """
    budget = max_programs()
    freed = 0
    victims = sorted((f for f in _registry if f is not keep and f.cache_size()),
                     key=lambda f: f.last_used)
    for f in victims:
        if live_programs() <= budget and not _over_mapping_limit():
            return freed
        freed += f.cache_size()
        f.clear_cache()
    if keep is not None and live_programs() > budget:
        freed += keep.cache_size()
        keep.clear_cache()
    return freed
