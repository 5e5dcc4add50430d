"""torch: DistributedDataParallel with gloo over 2 processes (each half of the
batch), against one process on the whole batch, with a plain torch loop."""

import os
import sys

os.environ["KERAS_BACKEND"] = "torch"

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
from common import BATCH, data, model, report  # noqa: E402


def train(masked, rank=0, world=1):
    x, y = data(masked)
    net = model(masked)
    module = torch.nn.parallel.DistributedDataParallel(net) if world > 1 else net
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    losses = []
    for start in range(0, len(x), BATCH):
        share = slice(start + rank * BATCH // world, start + (rank + 1) * BATCH // world)
        optimizer.zero_grad()
        prediction = module(torch.tensor(x[share]))
        loss = torch.mean((prediction - torch.tensor(y[share])) ** 2)
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    return losses, [w.detach().numpy().copy() for w in net.parameters()]


def worker(rank, world, port, queue):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        queue.put((rank, {m: train(m, rank, world) for m in (False, True)}))
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    port = int(sys.argv[1])
    context = mp.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=worker, args=(r, 2, port, queue)) for r in range(2)]
    for w in workers:
        w.start()
    distributed = dict(queue.get(timeout=300) for _ in workers)
    for w in workers:
        w.join(timeout=60)
    results = {}
    for masked in (False, True):
        single_losses, single_weights = train(masked)
        # Each process's loss is its half's mean; their mean is the batch's.
        ddp_losses = np.mean([distributed[r][masked][0] for r in (0, 1)], axis=0)
        results[f"single_{masked}"] = (single_losses, single_weights)
        results[f"ddp_{masked}"] = (ddp_losses, distributed[0][masked][1])
        results[f"ddp_rank1_{masked}"] = distributed[1][masked]
    report(**results)
