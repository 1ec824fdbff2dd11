"""gather_cat without a process group, and in a real 2-process gloo group with unequal shards (no hang)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import torch
from helpers import ROOT

from diffkit.training.distributed import gather_cat, rank_and_world


def test_without_a_process_group_it_is_the_identity() -> None:
    t = torch.arange(5.0)
    assert rank_and_world() == (0, 1)
    assert gather_cat(t) is t


def test_two_gloo_ranks_with_unequal_shards(tmp_path: Path) -> None:
    script = tmp_path / "ddp.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys, torch, torch.distributed as dist, torch.multiprocessing as mp
        sys.path.insert(0, {str(ROOT)!r})
        from diffkit.training.distributed import gather_cat

        def worker(rank):
            dist.init_process_group("gloo", init_method="file://{tmp_path / "rdzv"}", rank=rank, world_size=2)
            local = torch.full((rank + 1,), float(rank))   # rank 0: 1 value, rank 1: 2 values
            out = gather_cat(local)
            assert out.tolist() == [0.0, 1.0, 1.0], out
            empty = gather_cat(torch.zeros(0) if rank == 0 else torch.ones(3))  # an empty shard still joins
            assert empty.tolist() == [1.0, 1.0, 1.0], empty
            dist.destroy_process_group()

        if __name__ == "__main__":
            mp.spawn(worker, nprocs=2)
            print("ok")
    """)
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-2000:]
