"""PyTorch mirrors of Concord's networks, with the same state_dict keys, so weights exported by
Concord (safetensors) load here with strict=True and both sides can be timed on one workload."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvNormAct(nn.Module):
    def __init__(self, cin, cout, stride=1, rank=3):
        super().__init__()
        Conv = nn.Conv3d if rank == 3 else nn.Conv2d
        Norm = nn.InstanceNorm3d if rank == 3 else nn.InstanceNorm2d
        self.conv = Conv(cin, cout, 3, stride=stride, padding=1)
        self.norm = Norm(cout, affine=True)

    def forward(self, x):
        return F.leaky_relu(self.norm(self.conv(x)), 0.01)


class EncoderStage(nn.Module):
    def __init__(self, cin, cout, downsample, rank=3):
        super().__init__()
        self.conv1 = ConvNormAct(cin, cout, 2 if downsample else 1, rank)
        self.conv2 = ConvNormAct(cout, cout, 1, rank)

    def forward(self, x):
        return self.conv2(self.conv1(x))


class UNetEncoder(nn.Module):
    def __init__(self, cin, widths, rank=3):
        super().__init__()
        stages, c = [], cin
        for i, w in enumerate(widths):
            stages.append(EncoderStage(c, w, i > 0, rank))
            c = w
        self.stages = nn.ModuleList(stages)

    def forward(self, x):
        feats = []
        for s in self.stages:
            x = s(x)
            feats.append(x)
        return feats


class DecoderStage(nn.Module):
    def __init__(self, cin, skip, cout, rank=3):
        super().__init__()
        Up = nn.ConvTranspose3d if rank == 3 else nn.ConvTranspose2d
        self.up = Up(cin, cout, 2, stride=2)
        self.conv1 = ConvNormAct(cout + skip, cout, 1, rank)
        self.conv2 = ConvNormAct(cout, cout, 1, rank)

    def forward(self, x, skip):
        return self.conv2(self.conv1(torch.cat([self.up(x), skip], 1)))


class UNetDecoder(nn.Module):
    def __init__(self, num_classes, widths, rank=3):
        super().__init__()
        self.stages = nn.ModuleList(
            [DecoderStage(widths[i], widths[i - 1], widths[i - 1], rank) for i in range(len(widths) - 1, 0, -1)])
        Conv = nn.Conv3d if rank == 3 else nn.Conv2d
        self.head = Conv(widths[0], num_classes, 1)

    def forward(self, feats):
        x = feats[-1]
        for i, s in enumerate(self.stages):
            x = s(x, feats[len(feats) - 2 - i])
        return self.head(x)


class UNet(nn.Module):
    def __init__(self, cin, num_classes, widths=(16, 32, 64, 128, 256), rank=3):
        super().__init__()
        self.encoder = UNetEncoder(cin, widths, rank)
        self.decoder = UNetDecoder(num_classes, widths, rank)

    def forward(self, x):
        return self.decoder(self.encoder(x))


class ModalityChannelAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        b, c = x.shape[:2]
        f = x.view(b, c, -1)
        e = torch.bmm(f, f.transpose(1, 2))
        a = torch.softmax(e.amax(-1, keepdim=True) - e, -1)
        return self.gamma * torch.bmm(a, f).view_as(x) + x


class CMCNetwork(nn.Module):
    def __init__(self, modalities=2, num_classes=4, widths=(16, 32, 64, 128, 256)):
        super().__init__()
        c = widths[-1]
        self.encoders = nn.ModuleList([UNetEncoder(1, widths) for _ in range(modalities)])
        self.attention = nn.ModuleList([ModalityChannelAttention() for _ in range(modalities)])
        self.fusion = nn.Sequential(ConvNormAct(modalities * c, c), ConvNormAct(c, c))
        self.inject = nn.ModuleList([nn.Conv3d(c, c, 1) for _ in range(modalities)])
        self.decoders = nn.ModuleList([UNetDecoder(num_classes, widths) for _ in range(modalities)])

    def forward(self, inputs):
        feats = [e(x) for e, x in zip(self.encoders, inputs)]
        att = [a(f[-1]) for a, f in zip(self.attention, feats)]
        z = self.fusion(torch.cat(att, 1))
        logits = []
        for m, f in enumerate(feats):
            f = list(f)
            f[-1] = att[m] + self.inject[m](z)
            logits.append(self.decoders[m](f))
        return logits, [f[-1] for f in feats]


def dice_ce(logits, target, smooth=1e-5):
    p = torch.softmax(logits, 1)
    y = F.one_hot(target, logits.shape[1]).movedim(-1, 1).to(p.dtype)
    dims = tuple(range(2, p.ndim))
    dice = (2 * (p * y).sum(dims) + smooth) / (p.sum(dims) + y.sum(dims) + smooth)
    return 1 - dice.mean() + F.cross_entropy(logits, target)


def csc_loss(a, b, tau=0.5, grid=4):
    def emb(f):
        v = F.adaptive_avg_pool3d(f, grid).flatten(2)
        return v / (v.norm(dim=2, keepdim=True) + 1e-8)
    c = a.shape[1]
    z = torch.cat([emb(a), emb(b)], 1)
    s = torch.bmm(z, z.transpose(1, 2)) / tau
    eye = torch.eye(2 * c, dtype=torch.bool)
    s = s.masked_fill(eye, -1e9)
    pos = ((torch.arange(2 * c) + c) % (2 * c)).expand(a.shape[0], -1)
    return F.cross_entropy(s.transpose(1, 2), pos)


def soft_dice_sim(a, b, eps=1e-6):
    inner = torch.bmm(a, b.transpose(1, 2))
    return 2 * inner / (a.pow(2).sum(2).unsqueeze(2) + b.pow(2).sum(2).unsqueeze(1) + eps)


def info_nce(s, tau):
    b, p = s.shape[:2]
    t = torch.arange(p).expand(b, -1)
    l = s / tau
    return 0.5 * (F.cross_entropy(l.transpose(1, 2), t) + F.cross_entropy(l, t))


def cac_loss(a, b, tau=0.5, pool=2):
    def regions(x):
        p = torch.softmax(x, 1)
        if pool > 1:
            p = F.avg_pool3d(p, pool)
        return (p[:, 1:] if p.shape[1] > 2 else p).flatten(2)
    return info_nce(soft_dice_sim(regions(a), regions(b)), tau)
