"""Run by tests/test_trainers_ddp.py under `accelerate launch --num_processes 2 --cpu`: the pyramidal
finetune, then each rank writes its own final weights (student and EMA) to out_dir/rank<k>.pt."""

import sys

import torch

from trainers import pyramidalize

if __name__ == "__main__":
    run = pyramidalize.main(sys.argv[1:])
    acc = run.accelerator
    student = acc.unwrap_model(run.model)
    torch.save(
        {
            "rank": acc.process_index,
            "num_processes": acc.num_processes,
            "weights": {k: v.detach().cpu() for k, v in student.state_dict().items()},
            "ema": [p.detach().cpu() for p in run.ema.shadow_params],
        },
        f"{run.cfg.out_dir}/rank{acc.process_index}.pt",
    )
