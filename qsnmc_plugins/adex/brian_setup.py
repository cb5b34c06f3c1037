"""Import Brian2 quietly and choose its code-generation target.

Brian2 writes a debug log (and a copy of the running script) to the temporary
folder when it is imported, and captures every Python warning of the process
into its own logger; :func:`brian2_module` removes both files, switches file
logging off, keeps Brian2's console messages at error level and hands Python
warnings back to Python.

Code-generation target: Cython (``runtime`` mode), compiled with :data:`COMPILE_ARGS`
instead of Brian2's default ``-O3 -ffast-math -march=native``: the default makes a fit's
result depend on the CPU it runs on (instructions, fused multiply-adds, vectorised ``exp``),
and the AdEx's search turns a last-bit difference into another optimum (the speed cost is in
``benchmarks/README.md``). Compiled extensions are cached under
``$HOME/.cython/brian_extensions/<flags hash>`` (Brian2's cache keys the generated code but
not the flags), keyed by the code, which depends only on the equations, never on parameter
values or on the injected current: one fit compiles each code object once and every later
run, fit or prediction, reuses it. The numpy target is several times slower on this model
(``benchmarks/README.md``), so it is only a fall-back when Cython cannot compile (no
compiler, read-only cache); :func:`run_with_fallback` switches to it with a warning.
"""
from __future__ import annotations

import hashlib
import logging
import os
import warnings
from typing import Any, Callable, TypeVar

T = TypeVar("T")

#: Brian2 code-generation target tried first, then the fall-back
PREFERRED_TARGET = "cython"
FALLBACK_TARGET = "numpy"
#: gcc flags of the generated code: optimised, but neither CPU-specific nor value-changing
#: (no -march=native, no -ffast-math, no fused multiply-adds), so results are machine-independent
COMPILE_ARGS = ("-w", "-O3", "-ffp-contract=off", "-std=c++11")

_state: dict[str, Any] = {"module": None, "target": None}


def _silence_logging(b2: Any) -> None:
    """Switch off Brian2's temporary log file and script copy; keep the console at errors."""
    logger_cls = b2.utils.logger.BrianLogger
    b2.prefs["logging.file_log"] = False
    b2.prefs["logging.save_script"] = False
    b2.prefs["logging.delete_log_on_exit"] = True
    handler = getattr(logger_cls, "file_handler", None)
    if handler is not None:
        handler.close()
        logging.getLogger("brian2").removeHandler(handler)
        logger_cls.file_handler = None
    for attr in ("tmp_log", "tmp_script"):
        path = getattr(logger_cls, attr, None)
        if path:
            try:
                os.remove(path)
            except OSError:
                pass
            setattr(logger_cls, attr, None)
    logger_cls.log_level_error()
    # Brian2 routes every Python warning of the process into its logger (hidden at error
    # level); give warnings back to Python so that ours (and the harness') are shown.
    logging.captureWarnings(False)
    py_warnings = logging.getLogger("py.warnings")
    if logger_cls.console_handler is not None:
        py_warnings.removeHandler(logger_cls.console_handler)


def _set_compile_args(b2: Any) -> None:
    """Compile with :data:`COMPILE_ARGS`, caching the extensions in a folder of their own."""
    from brian2.codegen.runtime.cython_rt.extension_manager import get_cython_cache_dir

    b2.prefs.codegen.cpp.extra_compile_args_gcc = list(COMPILE_ARGS)
    if b2.prefs.codegen.runtime.cython.cache_dir is None:
        flags = hashlib.sha256(" ".join(COMPILE_ARGS).encode()).hexdigest()[:12]
        b2.prefs.codegen.runtime.cython.cache_dir = os.path.join(get_cython_cache_dir(), flags)


def brian2_module() -> Any:
    """The imported ``brian2`` module, silenced, compiling with :data:`COMPILE_ARGS`, set to the current target."""
    if _state["module"] is None:
        import brian2 as b2

        _silence_logging(b2)
        _set_compile_args(b2)
        _state["module"] = b2
        set_target(PREFERRED_TARGET)
    return _state["module"]


def set_target(target: str) -> None:
    """Set Brian2's runtime code-generation target (``"cython"`` or ``"numpy"``)."""
    brian2_module().prefs.codegen.target = target
    _state["target"] = target


def current_target() -> str:
    """The code-generation target in use."""
    brian2_module()
    return str(_state["target"])


def run_with_fallback(simulate: Callable[[], T]) -> T:
    """Call ``simulate()``; if Cython fails to compile, warn, switch to numpy and retry once.

    Errors that are not compilation failures (and any error under numpy) propagate,
    so the harness records them in the model's failed row.
    """
    brian2_module()
    try:
        return simulate()
    except Exception as exc:  # Brian2 wraps compiler errors in several exception types
        if _state["target"] != PREFERRED_TARGET or not _looks_like_compilation_error(exc):
            raise
        root = _chain(exc)[-1]
        warnings.warn(f"Brian2 Cython compilation failed ({type(root).__name__}: {str(root).strip()[:300]}); "
                      "falling back to the numpy target (about 5x slower)", RuntimeWarning, stacklevel=2)
        set_target(FALLBACK_TARGET)
        return simulate()


def _chain(exc: BaseException) -> list[BaseException]:
    """An exception and up to 9 of its causes, outermost first (Brian2 wraps the compiler's error)."""
    chain = [exc]
    while len(chain) < 10 and (chain[-1].__cause__ or chain[-1].__context__) is not None:
        chain.append(chain[-1].__cause__ or chain[-1].__context__)
    return chain


def _looks_like_compilation_error(exc: BaseException) -> bool:
    """True for errors raised while building a Cython extension."""
    keys = ("compil", "cython", "distutils", "setuptools", "gcc", "linker", "importerror")
    return any(k in f"{type(e).__name__} {e}".lower() for e in _chain(exc) for k in keys)
