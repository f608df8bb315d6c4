"""verl GRPO entry point with the Shop-R1 trainer: ``python -m training.verl_backend.entry [overrides]``.

Runs verl's own ``verl.trainer.main_ppo`` Hydra main (same config, same overrides) after
registering :class:`training.verl_backend.verl_trainer.ShopR1Trainer` in this process and
adding, where the command line lacks them, ``trainer.v1.trainer_mode=shop_r1_sync`` and the Ray
``worker_process_setup_hook`` that registers it in verl's ``TaskRunner`` actor too. Nothing in
the installed verl is patched. Needs verl (with TransferQueue), Ray and GPUs to train.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from training.verl_backend.overrides import with_required_overrides


def main(argv: Sequence[str] | None = None) -> None:
    """Run verl's PPO main with ``argv`` (default: the command line) plus Shop-R1's wiring."""
    args = with_required_overrides(sys.argv[1:] if argv is None else argv)
    try:
        from verl.trainer.main_ppo import main as verl_main

        import training.verl_backend.verl_trainer  # noqa: F401  (registers the trainer here)
    except ImportError as err:
        raise SystemExit(
            f"error: the verl entry point needs verl 0.9 with TransferQueue ({err}). verl pins its own "
            "transformers/vLLM: install it in a separate venv (docs/verl.md)."
        ) from None

    sys.argv = [sys.argv[0], *args]  # Hydra reads its overrides from sys.argv
    verl_main()


if __name__ == "__main__":
    main()
