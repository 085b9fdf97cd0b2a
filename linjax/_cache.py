"""JAX's persistent compilation cache, switched on when linjax is imported.

A compiled XLA program is written to disk and loaded by the next process that needs the
same program, so a second run skips compilation (docs/caching.md). One switch for the
Python API, the estimators and the CLI: the environment variable
LINJAX_COMPILATION_CACHE, read when `linjax` is imported: unset, the default directory
`$XDG_CACHE_HOME/linjax/jax-<version>` (`~/.cache/...`; per jax version); `off` disables
it; a path moves it. A cache directory the user configured in JAX (JAX_COMPILATION_CACHE_DIR
or `jax.config.update("jax_compilation_cache_dir", ...)`) is left alone, with its settings.
"""

import os
import pathlib
import sys

CACHE_ENV = "LINJAX_COMPILATION_CACHE"
_OFF = ("0", "off", "false", "no", "none", "disable")
#: Programs that compile faster than this are not written (JAX's default is 1 s). linjax's
#: fits compile in 0.3-3 s; eager array operations in 0.01-0.05 s, and writing each of those
#: would fill the directory with entries that are as quick to compile as to read.
MIN_COMPILE_SECS = 0.1


def default_cache_dir():
    """The user cache directory for compiled XLA programs (per jax version)."""
    import jax

    if sys.platform == "win32":
        base = pathlib.Path(os.environ.get("LOCALAPPDATA") or pathlib.Path.home() / "AppData"
                            / "Local")
    elif sys.platform == "darwin":
        base = pathlib.Path.home() / "Library" / "Caches"
    else:
        base = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache")
    return base / "linjax" / f"jax-{jax.__version__}"


def enable_persistent_cache():
    """Point JAX's persistent compilation cache at linjax's directory; returns it or None.

    None when LINJAX_COMPILATION_CACHE is off, the directory cannot be created, or the
    user already set `jax_compilation_cache_dir` (theirs is kept; returned as is).
    """
    import jax

    setting = os.environ.get(CACHE_ENV, "").strip()
    if setting.lower() in _OFF:
        return None
    current = getattr(jax.config, "jax_compilation_cache_dir", None)
    if current:
        return pathlib.Path(current)
    path = pathlib.Path(setting).expanduser() if setting else default_cache_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", str(path))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECS)
    except (OSError, AttributeError, ValueError):  # read-only home, old jax: run uncached
        return None
    return path


def compilation_cache_dir():
    """The persistent compilation cache directory JAX uses now (a Path), or None when off."""
    import jax

    current = getattr(jax.config, "jax_compilation_cache_dir", None)
    return pathlib.Path(current) if current else None
