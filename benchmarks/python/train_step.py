"""Times one training step of the same network/workload as `concord bench train-step` (U-Net) or
`concord bench cmc-step` (CMC with its losses), in PyTorch, same thread count.

    benchmarks/python/.venv/bin/python benchmarks/python/train_step.py --model unet --size 64
"""
import resource, argparse, json, os, time
import torch
from concord_models import UNet, CMCNetwork, dice_ce, csc_loss, cac_loss

ap = argparse.ArgumentParser()
ap.add_argument("--model", default="unet", choices=["unet", "cmc"])
ap.add_argument("--size", type=int, default=64)
ap.add_argument("--batch", type=int, default=2)
ap.add_argument("--channels", type=int, default=2)
ap.add_argument("--classes", type=int, default=4)
ap.add_argument("--steps", type=int, default=5)
ap.add_argument("--warmup", type=int, default=2)
ap.add_argument("--threads", type=int, default=os.cpu_count())
args = ap.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(0)
s, b = args.size, args.batch
if args.model == "unet":
    net = UNet(args.channels, args.classes)
    x = torch.randn(b, args.channels, s, s, s)
    y = torch.randint(0, args.classes, (b, s, s, s))
    def loss_fn():
        return torch.nn.functional.cross_entropy(net(x), y)
else:
    net = CMCNetwork(2, args.classes)
    xl = [torch.randn(b, 1, s, s, s) for _ in range(2)]
    xu = [torch.randn(b, 1, s, s, s) for _ in range(2)]
    y = torch.randint(0, args.classes, (b, s, s, s))
    def loss_fn():
        logits, bott = net([torch.cat([l, u]) for l, u in zip(xl, xu)])
        sup = sum(dice_ce(lg[:b], y) for lg in logits) / 2
        return sup + 0.1 * csc_loss(*bott) + 0.1 * cac_loss(logits[0][b:], logits[1][b:])
opt = torch.optim.Adam(net.parameters(), 1e-3)
times = []
for i in range(args.warmup + args.steps):
    t = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss = loss_fn()
    loss.backward()
    opt.step()
    loss.item()
    if i >= args.warmup:
        times.append(time.perf_counter() - t)
times.sort()
print(json.dumps({"model": args.model, "median_s": times[len(times) // 2], "min_s": times[0], "max_s": times[-1],
                  "threads": torch.get_num_threads(), "torch": torch.__version__, "size": s, "batch": b,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
