"""Times one training step of the same network/workload as `concord bench train-step` (U-Net) or
`concord bench cmc-step` (CMC with its losses), in PyTorch, same thread count.

    benchmarks/python/.venv/bin/python benchmarks/python/train_step.py --model unet --size 64
    python3 benchmarks/python/train_step.py --model cmc --size 128 --widths 32,64,128,256,320 \
        --device cuda --precision bf16        # the GPU check's reference (scripts/gpu-check)

Precision: bf16/fp16 run the forward under torch.autocast with the losses in fp32 (as Concord);
fp16 adds a GradScaler. Peak memory is the CUDA allocator's peak on a GPU, the process's peak RSS
on the CPU.
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
ap.add_argument("--widths", default="16,32,64,128,256")
ap.add_argument("--device", default="cpu")
ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
ap.add_argument("--channels-last", action="store_true")
args = ap.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(0)
dev = torch.device(args.device)
cuda = dev.type == "cuda"
widths = tuple(int(w) for w in args.widths.split(","))
fmt = torch.channels_last_3d if args.channels_last else torch.contiguous_format
s, b = args.size, args.batch
if args.model == "unet":
    net = UNet(args.channels, args.classes, widths=widths).to(dev, memory_format=fmt)
    x = torch.randn(b, args.channels, s, s, s, device=dev).contiguous(memory_format=fmt)
    y = torch.randint(0, args.classes, (b, s, s, s), device=dev)
    def forward():
        return (net(x),)
    def loss_of(out):
        return torch.nn.functional.cross_entropy(out[0].float(), y)
else:
    net = CMCNetwork(2, args.classes, widths=widths).to(dev, memory_format=fmt)
    xl = [torch.randn(b, 1, s, s, s, device=dev).contiguous(memory_format=fmt) for _ in range(2)]
    xu = [torch.randn(b, 1, s, s, s, device=dev).contiguous(memory_format=fmt) for _ in range(2)]
    y = torch.randint(0, args.classes, (b, s, s, s), device=dev)
    def forward():
        return net([torch.cat([l, u]) for l, u in zip(xl, xu)])
    def loss_of(out):
        logits, bott = [lg.float() for lg in out[0]], [f.float() for f in out[1]]
        sup = sum(dice_ce(lg[:b], y) for lg in logits) / 2
        return sup + 0.1 * csc_loss(*bott) + 0.1 * cac_loss(logits[0][b:], logits[1][b:])
opt = torch.optim.Adam(net.parameters(), 1e-3)
amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.precision)
scaler = torch.amp.GradScaler(dev.type, enabled=args.precision == "fp16")
if cuda:
    torch.backends.cudnn.benchmark = True
times = []
for i in range(args.warmup + args.steps):
    if cuda:
        torch.cuda.synchronize()
    t = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    with torch.autocast(dev.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        out = forward()
    loss = loss_of(out)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    loss.item()
    if cuda:
        torch.cuda.synchronize()
    if i >= args.warmup:
        times.append(time.perf_counter() - t)
    if i == args.warmup - 1 and cuda:
        torch.cuda.reset_peak_memory_stats()
times.sort()
peak = {"peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20} if cuda else {}
print(json.dumps({"model": args.model, "median_s": times[len(times) // 2], "min_s": times[0], "max_s": times[-1],
                  "threads": torch.get_num_threads(), "torch": torch.__version__, "size": s, "batch": b,
                  "widths": list(widths), "device": str(dev), "precision": args.precision,
                  "channels_last": args.channels_last, **peak,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
