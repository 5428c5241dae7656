"""One rank of verl 0.9.1's actor update on a CPU (run by test_verl_actor.py, one process per rank).

It does what verl does for ``update_actor`` with the engine workers: the trainer's
``_update_actor`` (left_right_2_no_padding and the same non-tensor settings), the actor worker's
``init_model`` (TrainingWorkerConfig from the ActorConfig, ``partial(ppo_loss, config=actor)``),
then ``TrainingWorker.train_mini_batch``: mini-batches, micro-batches through
``FSDPEngineWithLMHead``, verl's ppo_loss and the registered ``dgpo`` loss, an optimizer step per
mini-batch. Before each step it records the full parameters and gradients (rank 0 writes them).

    python actor_worker.py RANK WORLD PORT SPEC.json OUT_DIR
"""

import json
import sys
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cpu_shims  # noqa: E402


def _full(t):
    return (t.full_tensor() if hasattr(t, "full_tensor") else t).detach().float().clone()


def _snapshot(module):
    """Full parameters and gradients (FSDP2 DTensors gathered: a collective, every rank calls it)."""
    params = dict(module.named_parameters())
    return {n: _full(p) for n, p in params.items()}, {n: _full(p.grad) for n, p in params.items()}


def _batch(spec, rank, world):
    """This rank's rows, as verl's DataProto.to_tensordict() holds them, in no-padding form."""
    import torch
    from tensordict import TensorDict
    from verl.utils import tensordict_utils as tu
    from verl.workers.utils.padding import left_right_2_no_padding

    full = torch.load(spec["batch"])
    rows = full["input_ids"].shape[0]
    # verl's dispatch (make_nd_compute_dataproto_dispatch_fn) gives each dp rank a contiguous chunk
    chunk = slice(rank * rows // world, (rank + 1) * rows // world)
    td = TensorDict({k: v[chunk] for k, v in full.items()}, batch_size=[rows // world])
    td = left_right_2_no_padding(td)
    mini = spec["mini_batch_size"]
    tu.assign_non_tensor(td, calculate_entropy=False, distillation_use_topk=False, distillation_only=False,
                         global_batch_size=mini, mini_batch_size=mini, epochs=1, seed=0,
                         dataloader_kwargs={"shuffle": False}, compute_loss=True, temperature=1.0)
    return td


def run_case(case, spec, rank, world):
    import torch
    import verl
    from hydra import compose, initialize_config_dir
    from verl.utils.config import omega_conf_to_dataclass
    from verl.workers.config import TrainingWorkerConfig
    from verl.workers.engine_workers import TrainingWorker
    from verl.workers.utils.losses import ppo_loss

    config_dir = str(Path(verl.__file__).parent / "trainer" / "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        cfg = compose(config_name="ppo_trainer", overrides=spec["overrides"] + case["overrides"])
    # as ActorRolloutRefWorker.init_model builds the actor
    model_config = omega_conf_to_dataclass(cfg.actor_rollout_ref.model)
    actor_config = omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)
    actor_config.model_config = model_config
    training = TrainingWorkerConfig(model_type="language_model", model_config=model_config,
                                    engine_config=actor_config.engine, optimizer_config=actor_config.optim,
                                    checkpoint_config=actor_config.checkpoint)
    actor = cfg.actor_rollout_ref.actor
    training.engine_config.use_dynamic_bsz = actor.use_dynamic_bsz
    training.engine_config.max_token_len_per_gpu = actor.ppo_max_token_len_per_gpu
    training.engine_config.micro_batch_size_per_gpu = actor.ppo_micro_batch_size_per_gpu
    training.engine_config.use_remove_padding = model_config.get("use_remove_padding", False)
    worker = TrainingWorker(config=training)
    worker.reset()
    worker.set_loss_fn(partial(ppo_loss, config=actor_config))

    steps, engine = [], worker.engine
    original_step = engine.optimizer_step

    def recording_step():
        params, grads = _snapshot(engine.module)
        steps.append({"params": params, "grads": grads})
        return original_step()

    engine.optimizer_step = recording_step
    worker.train_mini_batch(_batch(spec, rank, world))
    if rank == 0:
        torch.save(steps, Path(spec["out"]) / f"{case['name']}.pt")
    torch.distributed.barrier()


def main(rank, world, port, spec_path):
    spec = json.loads(Path(spec_path).read_text())
    cpu_shims.install(rank, world, port)
    for case in spec["cases"]:
        run_case(case, spec, rank, world)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
