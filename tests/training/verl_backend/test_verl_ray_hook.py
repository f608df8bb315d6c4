"""The Ray setup hook registers ShopR1Trainer inside Ray workers, where verl's TaskRunner looks it up."""

from __future__ import annotations

import pytest

pytest.importorskip("verl")
pytest.importorskip("transfer_queue")
ray = pytest.importorskip("ray")

from training.verl_backend.overrides import SETUP_HOOK, TRAINER_MODE  # noqa: E402


@pytest.mark.slow
def test_setup_hook_registers_the_trainer_in_ray_workers() -> None:
    import shutil
    import tempfile

    @ray.remote(num_cpus=0)
    class Probe:  # stands in for verl's TaskRunner: a fresh worker process that looks the trainer up
        def lookup(self, name: str) -> str:
            from verl.trainer.ppo.v1 import get_trainer_cls

            return get_trainer_cls(name).__qualname__

    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # Ray's socket paths must stay under 108 bytes
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, _temp_dir=temp,
             runtime_env={"worker_process_setup_hook": SETUP_HOOK})
    try:
        probe = Probe.remote()
        assert ray.get(probe.lookup.remote(TRAINER_MODE), timeout=240) == "ShopR1Trainer"
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
