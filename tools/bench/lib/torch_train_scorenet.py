# PyTorch CPU reference for `npm run bench -- train`: one training step of the MNIST tutorial ScoreNet (Song's
# score-based generative modelling tutorial: channels 32-64-128-256, embed 256, Fourier embedding, GroupNorm,
# tutorial VE SDE with sigma 25) — tutorial DSM loss, backward, global-norm clip 1.0, Adam, EMA update — i.e. the
# same work as one @sbm/training step. Reimplemented from the tutorial's description.
# Usage: python3 torch_train_scorenet.py <batch> <steps> <warmup> <threads>; prints {"msPerStep", "minMs"} as JSON.
import json, math, sys, time
import torch
import torch.nn as nn

batch, steps, warmup, threads = (int(a) for a in sys.argv[1:5])
if threads > 0:
    torch.set_num_threads(threads)
torch.manual_seed(0)
SIGMA = 25.0


def std(t):
    return torch.sqrt((SIGMA ** (2 * t) - 1.0) / 2.0 / math.log(SIGMA))


class Fourier(nn.Module):
    def __init__(self, dim, scale=30.0):
        super().__init__()
        self.W = nn.Parameter(torch.randn(dim // 2) * scale, requires_grad=False)

    def forward(self, t):
        p = t[:, None] * self.W[None, :] * 2 * math.pi
        return torch.cat([torch.sin(p), torch.cos(p)], dim=-1)


class ScoreNet(nn.Module):
    def __init__(self, ch=(32, 64, 128, 256), e=256):
        super().__init__()
        self.embed = nn.Sequential(Fourier(e), nn.Linear(e, e))
        c = ch
        self.conv = nn.ModuleList([
            nn.Conv2d(1, c[0], 3, 1, bias=False), nn.Conv2d(c[0], c[1], 3, 2, bias=False),
            nn.Conv2d(c[1], c[2], 3, 2, bias=False), nn.Conv2d(c[2], c[3], 3, 2, bias=False)])
        self.dense = nn.ModuleList([nn.Linear(e, n) for n in (c[0], c[1], c[2], c[3], c[2], c[1], c[0])])
        self.norm = nn.ModuleList([nn.GroupNorm(4, c[0]), nn.GroupNorm(32, c[1]), nn.GroupNorm(32, c[2]),
                                   nn.GroupNorm(32, c[3]), nn.GroupNorm(32, c[2]), nn.GroupNorm(32, c[1]),
                                   nn.GroupNorm(32, c[0])])
        self.tconv4 = nn.ConvTranspose2d(c[3], c[2], 3, 2, bias=False)
        self.tconv3 = nn.ConvTranspose2d(2 * c[2], c[1], 3, 2, bias=False, output_padding=1)
        self.tconv2 = nn.ConvTranspose2d(2 * c[1], c[0], 3, 2, bias=False, output_padding=1)
        self.tconv1 = nn.ConvTranspose2d(2 * c[0], 1, 3, 1)

    def forward(self, x, t):
        act = lambda h: h * torch.sigmoid(h)
        emb = act(self.embed(t))
        d = lambda i: self.dense[i](emb)[:, :, None, None]
        hs = []
        h = x
        for i in range(4):
            h = act(self.norm[i](self.conv[i](h) + d(i)))
            hs.append(h)
        h = act(self.norm[4](self.tconv4(hs[3]) + d(4)))
        h = act(self.norm[5](self.tconv3(torch.cat([h, hs[2]], 1)) + d(5)))
        h = act(self.norm[6](self.tconv2(torch.cat([h, hs[1]], 1)) + d(6)))
        h = self.tconv1(torch.cat([h, hs[0]], 1))
        return h / std(t)[:, None, None, None]


model = ScoreNet()
ema = [p.detach().clone() for p in model.parameters()]
opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8)
data = torch.rand(1024, 1, 28, 28)


def step(i):
    idx = torch.randint(0, data.shape[0], (batch,))
    x = data[idx]
    t = torch.rand(batch) * (1 - 1e-5) + 1e-5
    z = torch.randn_like(x)
    s = std(t)[:, None, None, None]
    score = model(x + z * s, t)
    loss = torch.mean(torch.sum((score * s + z) ** 2, dim=(1, 2, 3)))
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    with torch.no_grad():
        d = min(0.999, (1 + i) / (10 + i))
        for e_, p in zip(ema, model.parameters()):
            e_.sub_((1 - d) * (e_ - p))
    return loss.item()


for i in range(warmup):
    step(i)
ts = []
for i in range(steps):
    t0 = time.perf_counter()
    step(warmup + i)
    ts.append(1000 * (time.perf_counter() - t0))
ts.sort()
n = len(ts)
print(json.dumps({"msPerStep": ts[n // 2] if n % 2 else (ts[n // 2 - 1] + ts[n // 2]) / 2, "minMs": ts[0],
                  "threads": torch.get_num_threads(), "torch": torch.__version__}))
