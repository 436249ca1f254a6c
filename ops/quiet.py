"""`python -m ops.quiet MODULE ARGS...`: run MODULE like `python -m`, keeping known
third-party deprecation noise out of the logs.

PYTHONWARNINGS alone does not do it for Rasa: imports inside the server re-order the
warning filters, and pkg_resources/matplotlib/sanic deprecations reach every log. A
`showwarning` hook is not affected by filter changes. Warnings raised by our own code,
and every warning that is not a deprecation, still show.

`rasa run --enable-api` gets its API token from KEFU_RASA_TOKEN in the environment: it is added
to `sys.argv` here, inside the process, so `ps` and /proc/<pid>/cmdline never show it.
"""

from __future__ import annotations

import runpy
import sys
import warnings
from typing import Any

from kefu.config import load_settings

NOISE = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)
NOISE_NAMES = {"MovedIn20Warning", "PyparsingDeprecationWarning", "MatplotlibDeprecationWarning"}


def is_noise(category: type, filename: str) -> bool:
    third_party = "site-packages" in filename or "dist-packages" in filename
    return third_party and (issubclass(category, NOISE) or category.__name__ in NOISE_NAMES)


def install() -> None:
    original = warnings.showwarning

    def show(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        if not is_noise(category, filename):
            original(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def with_rasa_token(args: list[str]) -> list[str]:
    """`rasa run ... --enable-api` plus `--auth-token` from KEFU_RASA_TOKEN, unless one is given.

    Written as one `--auth-token=TOKEN` argument: a URL-safe token may start with "-", and
    argparse reads a separate "-..." value as an option and exits with code 2.
    """
    given = any(arg in ("--auth-token", "-t") or arg.startswith("--auth-token=") for arg in args)
    if args[:2] != ["rasa", "run"] or "--enable-api" not in args or given:
        return args
    token = load_settings().rasa_token
    return [*args, f"--auth-token={token}"] if token else args


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit("usage: python -m ops.quiet MODULE [ARGS...]")
    install()
    module = sys.argv[1]
    sys.argv = with_rasa_token([module, *sys.argv[2:]])
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
