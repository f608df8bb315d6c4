"""Package surfaces: every exported name resolves, lazily, and light imports stay light."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("package", ["shop_env", "agents", "rewards"])
def test_every_exported_name_resolves_and_is_listed(package):
    module = __import__(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
        assert name in dir(module)
    with pytest.raises(AttributeError, match=f"module '{package}' has no attribute 'no_such_name'"):
        module.no_such_name  # noqa: B018


def test_importing_the_packages_loads_neither_torch_nor_lxml_eagerly():
    code = "import sys, shop_env, agents, rewards; print('torch' in sys.modules, 'shop_env.webpage.prune' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
