"""JAX's persistent compilation cache for linjax's front doors (CLI and estimators).

A compiled XLA program is written to disk and loaded by the next process that needs the
same program, so a second run skips compilation. Default directory:
`$XDG_CACHE_HOME/linjax/jax-<version>` (`~/.cache/...`; per jax version). The
environment variable LINJAX_COMPILATION_CACHE=off disables it; set to a path, it moves
it. A cache directory the user configured in JAX is left alone.
"""

import os
import pathlib
import sys

CACHE_ENV = "LINJAX_COMPILATION_CACHE"
_OFF = ("0", "off", "false", "no", "none", "disable")


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
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    except (OSError, AttributeError, ValueError):  # read-only home, old jax: run uncached
        return None
    return path
