"""Adapters that put the verified losses into existing engines (docs/scale.md).

- ``verl_plugin``: registers ``dgpo``, ``gppo``, ``ce_gppo`` and ``aspo`` with verl 0.9.x through
  the ``verl.plugins`` entry point; ``verl``: the ``dgpo verl-check`` command.
- ``trl``: ``DGPOConfig`` / ``DGPOTrainer`` for TRL 1.16.x.

Each module imports its engine itself; importing ``dgpo_ref`` never imports verl or TRL.
"""
