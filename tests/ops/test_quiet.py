import subprocess
import sys
import warnings

from ops.quiet import install, is_noise


def test_only_third_party_deprecations_are_noise():
    assert is_noise(DeprecationWarning, "/x/site-packages/pkg_resources/__init__.py")
    assert not is_noise(DeprecationWarning, "/work/kefu/text.py")
    assert not is_noise(UserWarning, "/x/site-packages/rasa/shared/utils/io.py")


def test_hook_survives_filter_changes():
    saved = warnings.showwarning
    shown: list[str] = []
    try:
        warnings.showwarning = lambda message, *rest: shown.append(str(message))
        install()
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn_explicit("old api", DeprecationWarning, "/v/site-packages/lib.py", 1)
            warnings.warn_explicit("real problem", UserWarning, "/v/site-packages/lib.py", 2)
    finally:
        warnings.showwarning = saved
    assert shown == ["real problem"]


def test_runs_a_module_like_python_dash_m():
    out = subprocess.run(
        [sys.executable, "-m", "ops.quiet", "json.tool", "--compact"], input='{"a": [1, 2]}',
        capture_output=True, text=True, check=True,
    )
    assert out.stdout.strip() == '{"a":[1,2]}'
