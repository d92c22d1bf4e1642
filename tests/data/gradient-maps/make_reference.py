#!/usr/bin/python3
"""Makes the reference data of test_gradient_references: three tiny models built here (a CLIP in the
OpenAI / open_clip layout, a supervised timm ViT with a classifier, a timm SigLIP tower), one input image, a label
list, and the heatmaps the authors' code computes on them, each step ported from that code:

- Chefer et al. (hila-chefer/Transformer-MM-Explainability): CLIP_explainability.ipynb, interpret()
  and show_image_relevance() (CLIP: the score is logits_per_image[i, i]; R = I; for the blocks from
  start_layer (-1: the last only), R += mean over heads of clamp(grad * attn_probs, min 0) @ R;
  R[:, 0, 1:] reshaped to the grid, bilinear interpolation to the image, min-max), both start layers;
  Transformer_MM_explainability_ViT.ipynb, generate_relevance() and generate_visualization()
  (supervised ViT: every block, the class logit as the score).
- Grad-CAM (jacobgil/pytorch-grad-cam): usage_examples/clip_example.py (the model returns the
  softmax of logits_per_image over the label list; ClassifierOutputTarget(k) on those
  probabilities; target layer vision_model.encoder.layers[-1].layer_norm1; reshape_transform drops
  the class token), and the same with the logits as the model's output (the named option);
  usage_examples/vit_example.py (blocks[-1].norm1, the class logit). GradCAM.get_cam_weights (mean
  gradient over the grid), BaseCAM.get_cam_image / compute_cam_per_layer (sum of weighted
  activations, np.maximum(cam, 0), scale_cam_image: min shifted to 0, divided by 1e-7 + max,
  cv2.resize to the input), aggregate_multi_layers (np.maximum, scale_cam_image again).
- LeGrad (WalBouss/LeGrad): legrad/wrapper.py, LeWrapper.compute_legrad_clip with layer_index -2
  (for each of the last two blocks: ln_post(mean over tokens of the block's output) @ proj,
  normalised, its similarity with the normalised text, the gradient w.r.t. that block's attention
  map, clamp(min 0), mean over heads then over query rows, class column dropped, reshaped,
  F.interpolate(scale_factor=patch, bilinear), summed; legrad/utils.py min_max at the end).

- LeGrad on SigLIP: LeWrapper.compute_legrad_siglip (the timm trunk's attn_pool on each of the
  last two blocks' outputs, without the final norm; the gradient of the similarity w.r.t. the
  pool's attn_probs, clamp, mean over heads, the probe's row; the same for the empty prompt's
  embedding, min_max, patches above 0.8 zeroed; min_max, then F.interpolate).
- TextSpan's SigLIP map (yossigandelsman/clip_text_span): demo_siglip.ipynb with compute_siglip.py's
  PRSHook on 'pooling_head.attention.out.post' (utils/siglip/modeling_siglip.py,
  MultiHeadAttention.forward_per_head: attention probability x value, through each head's slice of
  out_proj), reshaped to the grid and multiplied by the text, summed over the pooling heads; the
  per-token terms themselves too (siglip_pool_terms.npy).

Gradients are those autograd gives: a small reverse-mode differentiation over the same forward
pass, in double precision (Debian's python3 alone: no numpy or torch needed). Interpolation is
PyTorch's / OpenCV's bilinear with half-pixel centres (align_corners=False), which coincide for
these integer upscales. Run from this folder: /usr/bin/python3 make_reference.py"""
import json
import math
import random
import struct

# ---- reverse-mode differentiation over scalars ----

_ids = [0]


class V:
    __slots__ = ("v", "p", "g", "i")

    def __init__(self, v, parents=()):
        self.v = v
        self.p = parents  # ((parent, d self / d parent), ...)
        self.g = 0.0
        _ids[0] += 1
        self.i = _ids[0]


def grad(out, wrt):
    """d out / d x for each x of wrt (what torch.autograd.grad returns)."""
    seen, stack, order = set(), [out], []
    while stack:
        n = stack.pop()
        if n.i in seen:
            continue
        seen.add(n.i)
        order.append(n)
        stack.extend(p for p, _ in n.p)
    order.sort(key=lambda n: -n.i)  # a node is made after its parents
    for n in order:
        n.g = 0.0
    out.g = 1.0
    for n in order:
        if n.g:
            for p, w in n.p:
                p.g += w * n.g
    return [x.g if x.i in seen else 0.0 for x in wrt]


def const(x):
    return V(x)


def add(a, b):
    return V(a.v + b.v, ((a, 1.0), (b, 1.0)))


def dot(a, b):
    return V(sum(x.v * y.v for x, y in zip(a, b)), tuple((x, y.v) for x, y in zip(a, b)) + tuple((y, x.v) for x, y in zip(a, b)))


def lin(xs, w, b=None):
    """x @ w.T + b for a vector x of nodes, w [out][in] constants."""
    out = []
    for j, row in enumerate(w):
        v = sum(r * x.v for r, x in zip(row, xs)) + (b[j] if b else 0.0)
        out.append(V(v, tuple(zip(xs, row))))
    return out


def unary(a, f, df):
    return V(f(a.v), ((a, df(a.v)),))


def softmax(xs):
    m = max(x.v for x in xs)
    e = [math.exp(x.v - m) for x in xs]
    s = sum(e)
    y = [u / s for u in e]
    return [V(y[i], tuple((xs[j], y[i] * ((1.0 if i == j else 0.0) - y[j])) for j in range(len(xs)))) for i in range(len(xs))]


def layer_norm(xs, g, b, eps):
    d = len(xs)
    mu = lin(xs, [[1.0 / d] * d])[0]
    c = [V(x.v - mu.v, ((x, 1.0), (mu, -1.0))) for x in xs]
    var = V(sum(u.v * u.v for u in c) / d, tuple((u, 2.0 * u.v / d) for u in c))
    r = unary(var, lambda v: (v + eps) ** -0.5, lambda v: -0.5 * (v + eps) ** -1.5)
    return [V(u.v * r.v * g[i] + b[i], ((u, r.v * g[i]), (r, u.v * g[i]))) for i, u in enumerate(c)]


def quick_gelu(a):
    s = lambda v: 1.0 / (1.0 + math.exp(-1.702 * v))
    return unary(a, lambda v: v * s(v), lambda v: s(v) + 1.702 * v * s(v) * (1.0 - s(v)))


def gelu(a):
    return unary(a, lambda v: 0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))),
                 lambda v: 0.5 * (1.0 + math.erf(v / math.sqrt(2.0))) + v * math.exp(-0.5 * v * v) / math.sqrt(2.0 * math.pi))


def normalize(xs):
    """F.normalize(x, dim=-1)."""
    n = V(math.sqrt(sum(x.v * x.v for x in xs)), tuple((x, x.v / math.sqrt(sum(y.v * y.v for y in xs))) for x in xs))
    return [V(x.v / n.v, ((x, 1.0 / n.v), (n, -x.v / (n.v * n.v)))) for x in xs]


# ---- weights (float32-representable, so that the checkpoint holds exactly what is computed) ----

rng = random.Random(20261206)


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def randn(*shape, scale=1.0, offset=0.0):
    if len(shape) == 1:
        return [f32(offset + scale * rng.gauss(0, 1)) for _ in range(shape[0])]
    return [randn(*shape[1:], scale=scale, offset=offset) for _ in range(shape[0])]


def flat(x):
    return [v for row in x for v in flat(row)] if isinstance(x, list) else [x]


def shape_of(x):
    return [len(x)] + shape_of(x[0]) if isinstance(x, list) else []


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, value in tensors.items():
        data = struct.pack("<%df" % len(flat(value)), *flat(value))
        header[name] = {"dtype": "F32", "shape": shape_of(value), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def write_npy(path, value):
    shape = shape_of(value)
    head = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % "".join("%d, " % s for s in shape)
    head += " " * (-(len(head) + 11) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head.encode())
        f.write(struct.pack("<%df" % len(flat(value)), *flat(value)))


SIZE, PATCH, WIDTH, HEADS, LAYERS, EMBED, CLASSES = 12, 4, 16, 2, 3, 8, 5
GRID = SIZE // PATCH
TOKENS = 1 + GRID * GRID
DH = WIDTH // HEADS


def block_weights(w):
    return {"ln1": (randn(w, scale=0.1, offset=1.0), randn(w, scale=0.1)), "qkv": (randn(3 * w, w, scale=w ** -0.5), randn(3 * w, scale=0.1)),
            "out": (randn(w, w, scale=w ** -0.5), randn(w, scale=0.1)), "ln2": (randn(w, scale=0.1, offset=1.0), randn(w, scale=0.1)),
            "fc1": (randn(4 * w, w, scale=w ** -0.5), randn(4 * w, scale=0.1)), "fc2": (randn(w, 4 * w, scale=(4 * w) ** -0.5), randn(w, scale=0.1))}


def make_tower(classifier):
    t = {"patch": randn(WIDTH, 3, PATCH, PATCH, scale=0.2), "patch_bias": randn(WIDTH, scale=0.1) if classifier else None,
         "cls": randn(WIDTH, scale=0.5), "pos": randn(TOKENS, WIDTH, scale=0.5), "blocks": [block_weights(WIDTH) for _ in range(LAYERS)],
         "norm": (randn(WIDTH, scale=0.1, offset=1.0), randn(WIDTH, scale=0.1))}
    if classifier:
        t["head"] = (randn(CLASSES, WIDTH, scale=WIDTH ** -0.5), randn(CLASSES, scale=0.1))
    else:
        t["ln_pre"] = (randn(WIDTH, scale=0.1, offset=1.0), randn(WIDTH, scale=0.1))
        t["proj"] = randn(WIDTH, EMBED, scale=WIDTH ** -0.5)
    return t


# ---- the forward passes (OpenAI CLIP's VisionTransformer, timm's VisionTransformer) ----

def resample_abs_pos_embed(pos, new, prefix):
    """timm's layers/pos_embed.py resample_abs_pos_embed (interpolation 'bicubic', antialias=True), as
    LeGrad's vit_dynamic_size_forward and timm's dynamic_img_size call it: the grid rows through
    F.interpolate's antialiased bicubic (PyTorch's _upsample_bicubic2d_aa: Keys' cubic with a = -0.5,
    support 2 scaled by the input / output ratio when it shrinks, weights normalised), prefix kept."""
    old = int(round(math.sqrt(len(pos) - prefix)))

    def cubic(x, a=-0.5):
        x = abs(x)
        if x < 1.0:
            return ((a + 2) * x - (a + 3)) * x * x + 1
        if x < 2.0:
            return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
        return 0.0

    def taps(n_in, n_out):
        scale = n_in / n_out
        support = 2.0 * scale if scale >= 1.0 else 2.0
        invscale = 1.0 / scale if scale >= 1.0 else 1.0
        out = []
        for i in range(n_out):
            center = scale * (i + 0.5)
            xmin = max(int(center - support + 0.5), 0)
            xsize = min(int(center + support + 0.5), n_in) - xmin
            w = [cubic((j + xmin - center + 0.5) * invscale) for j in range(xsize)]
            total = sum(w)
            out.append((xmin, [v / total for v in w] if total else w))
        return out

    g = [pos[prefix + r * old:prefix + (r + 1) * old] for r in range(old)]
    d = len(pos[0])
    wt = taps(old, new)
    rows = [[[sum(w * g[r][x0 + j][c] for j, w in enumerate(ws)) for c in range(d)] for x0, ws in wt] for r in range(old)]
    cols = [[[sum(w * rows[y0 + j][x][c] for j, w in enumerate(ws)) for c in range(d)] for x in range(new)] for y0, ws in wt]
    return pos[:prefix] + [cols[y][x] for y in range(new) for x in range(new)]


def embed(t, pixels):
    """conv1 (stride = kernel = patch), flattened row-major, class token first, positions added
    (resampled when the input is not the native size)."""
    tokens = [[const(v) for v in t["cls"]]] if t["cls"] else []
    side = len(pixels[0]) // PATCH
    pos = t["pos"]
    if len(pos) != len(tokens) + side * side:
        pos = resample_abs_pos_embed(pos, side, len(tokens))
    for gy in range(side):
        for gx in range(side):
            patch = [pixels[c][gy * PATCH + y][gx * PATCH + x] for c in range(3) for y in range(PATCH) for x in range(PATCH)]
            w = [[t["patch"][o][c][y][x] for c in range(3) for y in range(PATCH) for x in range(PATCH)] for o in range(WIDTH)]
            vals = [sum(a * b for a, b in zip(row, patch)) + (t["patch_bias"][o] if t["patch_bias"] else 0.0) for o, row in enumerate(w)]
            tokens.append([const(v) for v in vals])
    return [[add(x, const(p)) for x, p in zip(tok, ps)] for tok, ps in zip(tokens, pos)]


def block(b, xs, eps, act, taps):
    """x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)); taps: the first norm's output and attn_probs[h][i][j]."""
    normed = [layer_norm(x, *b["ln1"], eps) for x in xs]
    qkv = [lin(y, *b["qkv"]) for y in normed]
    scale = DH ** -0.5
    probs, heads = [], []
    for h in range(HEADS):
        q = [[unary(v, lambda u: u * scale, lambda u: scale) for v in row[h * DH:(h + 1) * DH]] for row in qkv]
        k = [row[WIDTH + h * DH:WIDTH + (h + 1) * DH] for row in qkv]
        v = [row[2 * WIDTH + h * DH:2 * WIDTH + (h + 1) * DH] for row in qkv]
        a = [softmax([dot(q[i], k[j]) for j in range(len(xs))]) for i in range(len(xs))]
        probs.append(a)
        heads.append([[dot(a[i], [v[j][c] for j in range(len(xs))]) for c in range(DH)] for i in range(len(xs))])
    taps["normed"], taps["attn"] = normed, probs
    concat = [[u for h in range(HEADS) for u in heads[h][i]] for i in range(len(xs))]
    xs = [[add(x, o) for x, o in zip(xs[i], lin(concat[i], *b["out"]))] for i in range(len(xs))]
    mlp = [lin([act(u) for u in lin(layer_norm(x, *b["ln2"], eps), *b["fc1"])], *b["fc2"]) for x in xs]
    return [[add(x, m) for x, m in zip(xs[i], mlp[i])] for i in range(len(xs))]


def clip_forward(t, pixels):
    xs = [layer_norm(x, *t["ln_pre"], 1e-5) for x in embed(t, pixels)]
    taps = []
    for b in t["blocks"]:
        taps.append({})
        xs = block(b, xs, 1e-5, quick_gelu, taps[-1])
        taps[-1]["out"] = xs
    image = lin(layer_norm(xs[0], *t["norm"], 1e-5), [list(r) for r in zip(*t["proj"])])  # ln_post(x[:, 0]) @ proj
    return image, taps


def vit_forward(t, pixels):
    xs = embed(t, pixels)
    taps = []
    for b in t["blocks"]:
        taps.append({})
        xs = block(b, xs, 1e-6, gelu, taps[-1])
    return lin(layer_norm(xs[0], *t["norm"], 1e-6), *t["head"]), taps


def gelu_tanh(a):
    c = math.sqrt(2.0 / math.pi)
    f = lambda v: 0.5 * v * (1.0 + math.tanh(c * (v + 0.044715 * v ** 3)))
    df = lambda v: 0.5 * (1.0 + math.tanh(c * (v + 0.044715 * v ** 3))) + \
        0.5 * v * (1.0 - math.tanh(c * (v + 0.044715 * v ** 3)) ** 2) * c * (1.0 + 3 * 0.044715 * v * v)
    return unary(a, f, df)


def make_siglip():
    w = WIDTH
    return {"patch": randn(w, 3, PATCH, PATCH, scale=0.2), "patch_bias": randn(w, scale=0.1), "pos": randn(GRID * GRID, w, scale=0.5),
            "blocks": [block_weights(w) for _ in range(LAYERS)], "norm": (randn(w, scale=0.1, offset=1.0), randn(w, scale=0.1)),
            "latent": randn(w, scale=1.0), "q": (randn(w, w, scale=w ** -0.5), randn(w, scale=0.1)),
            "kv": (randn(2 * w, w, scale=w ** -0.5), randn(2 * w, scale=0.1)), "proj": (randn(w, w, scale=w ** -0.5), randn(w, scale=0.1)),
            "pool_norm": (randn(w, scale=0.1, offset=1.0), randn(w, scale=0.1)),
            "fc1": (randn(4 * w, w, scale=w ** -0.5), randn(4 * w, scale=0.1)), "fc2": (randn(w, 4 * w, scale=(4 * w) ** -0.5), randn(w, scale=0.1))}


def attn_pool(t, xs, taps):
    """timm AttentionPoolLatent: q from the latent, k / v from the tokens, proj, x + mlp(norm(x));
    taps: attn_probs[h][j] and each head's per-token term through proj (out.post)."""
    q = [sum(r * u for r, u in zip(row, t["latent"])) + b for row, b in zip(*t["q"])]
    kv = [lin(x, *t["kv"]) for x in xs]
    scale = DH ** -0.5
    probs, heads, terms = [], [], []
    for h in range(HEADS):
        qh = [u * scale for u in q[h * DH:(h + 1) * DH]]
        a = softmax([lin(row[h * DH:(h + 1) * DH], [qh])[0] for row in kv])
        v = [row[WIDTH + h * DH:WIDTH + (h + 1) * DH] for row in kv]
        probs.append(a)
        heads.append([dot(a, [v[j][c] for j in range(len(xs))]) for c in range(DH)])
        w = [row[h * DH:(h + 1) * DH] for row in t["proj"][0]]
        terms.append([[a[j].v * sum(wr[c] * v[j][c].v for c in range(DH)) for wr in w] for j in range(len(xs))])
    taps["attn"], taps["terms"] = probs, terms
    out = lin([u for h in heads for u in h], *t["proj"])
    mlp = lin([gelu_tanh(u) for u in lin(layer_norm(out, *t["pool_norm"], 1e-6), *t["fc1"])], *t["fc2"])
    return [add(o, m) for o, m in zip(out, mlp)]


def siglip_forward(t, pixels):
    xs = embed(dict(t, cls=None), pixels)
    taps = []
    for b in t["blocks"]:
        taps.append({})
        xs = block(b, xs, 1e-6, gelu_tanh, taps[-1])
        taps[-1]["out"] = xs
    pool_taps = {}
    return attn_pool(t, [layer_norm(x, *t["norm"], 1e-6) for x in xs], pool_taps), taps, pool_taps


# ---- the references' aggregation ----

def bilinear(m, size):
    """F.interpolate(mode='bilinear', align_corners=False) / cv2.resize(INTER_LINEAR) of a square map."""
    n = len(m)
    scale = n / size

    def src(i):
        s = max((i + 0.5) * scale - 0.5, 0.0)
        i0 = int(s)
        return i0, min(i0 + 1, n - 1), s - i0

    out = []
    for y in range(size):
        y0, y1, ly = src(y)
        row = []
        for x in range(size):
            x0, x1, lx = src(x)
            top = (1 - lx) * m[y0][x0] + lx * m[y0][x1]
            bottom = (1 - lx) * m[y1][x0] + lx * m[y1][x1]
            row.append((1 - ly) * top + ly * bottom)
        out.append(row)
    return out


def grid(values):
    return [values[r * GRID:(r + 1) * GRID] for r in range(GRID)]


def min_max(m):
    lo, hi = min(min(r) for r in m), max(max(r) for r in m)
    return [[(v - lo) / (hi - lo) for v in r] for r in m]


def scale_cam_image(m, resize):
    lo = min(min(r) for r in m)
    m = [[v - lo for v in r] for r in m]
    hi = max(max(r) for r in m)
    m = [[v / (1e-7 + hi) for v in r] for r in m]
    return bilinear(m, SIZE) if resize else m


def chefer(score, taps, start_layer):
    """interpret() / generate_relevance(): R = I; R = R + cam @ R from start_layer on."""
    if start_layer == -1:
        start_layer = len(taps) - 1
    n = TOKENS
    R = [[1.0 if i == j else 0.0 for j in range(n)] for i in range(n)]
    for layer, tap in enumerate(taps):
        if layer < start_layer:
            continue
        flat_attn = [a for h in tap["attn"] for row in h for a in row]
        g = grad(score, flat_attn)
        cam = [[0.0] * n for _ in range(n)]
        for h in range(HEADS):
            for i in range(n):
                for j in range(n):
                    idx = (h * n + i) * n + j
                    cam[i][j] += max(g[idx] * flat_attn[idx].v, 0.0) / HEADS
        R = [[R[i][j] + sum(cam[i][k] * R[k][j] for k in range(n)) for j in range(n)] for i in range(n)]
    return min_max(bilinear(grid(R[0][1:]), SIZE))


def grad_cam(score, taps):
    """GradCAM on the last block's first norm, reshape_transform dropping the class token."""
    acts = taps[-1]["normed"][1:]
    g = grad(score, [u for tok in acts for u in tok])
    weights = [sum(g[t * WIDTH + c] for t in range(len(acts))) / len(acts) for c in range(WIDTH)]
    cam = [max(sum(weights[c] * tok[c].v for c in range(WIDTH)), 0.0) for tok in acts]
    scaled = scale_cam_image(grid(cam), True)
    return scale_cam_image([[max(v, 0.0) for v in r] for r in scaled], False)


def legrad_clip(t, taps, text, layer_index=-2):
    start = len(taps) + layer_index
    accum = [[0.0] * SIZE for _ in range(SIZE)]
    for layer in range(start, len(taps)):
        out = taps[layer]["out"]
        mean = [lin([tok[c] for tok in out], [[1.0 / len(out)] * len(out)])[0] for c in range(WIDTH)]
        feat = normalize(lin(layer_norm(mean, *t["norm"], 1e-5), [list(r) for r in zip(*t["proj"])]))
        sim = lin(feat, [text])[0]
        flat_attn = [a for h in taps[layer]["attn"] for row in h for a in row]
        g = [max(v, 0.0) for v in grad(sim, flat_attn)]
        n = TOKENS
        rel = [sum(g[(h * n + i) * n + j] for h in range(HEADS) for i in range(n)) / (HEADS * n) for j in range(n)]
        up = bilinear(grid(rel[1:]), SIZE)
        accum = [[a + u for a, u in zip(ra, ru)] for ra, ru in zip(accum, up)]
    return min_max(accum)


def legrad_siglip(t, taps, text, empty, layer_index=-2, threshold=0.8):
    start = len(taps) + layer_index
    n = GRID * GRID
    accum, accum_empty = [0.0] * n, [0.0] * n
    for layer in range(start, len(taps)):
        pool_taps = {}
        pooled = normalize(attn_pool(t, taps[layer]["out"], pool_taps))
        flat_attn = [a for h in pool_taps["attn"] for a in h]
        for target, acc in ((text, accum), (empty, accum_empty)):
            g = [max(v, 0.0) for v in grad(lin(pooled, [target])[0], flat_attn)]
            for j in range(n):
                acc[j] += sum(g[h * n + j] for h in range(HEADS)) / HEADS
    heat_empty = min_max(grid(accum_empty))
    res = [[0.0 if e > threshold else v for v, e in zip(rv, re)] for rv, re in zip(grid(accum), heat_empty)]
    return bilinear(min_max(res), SIZE)


def textspan_siglip_map(pool_taps, text):
    terms = pool_taps["terms"]  # [heads][tokens][E]
    return grid([sum(sum(a * b for a, b in zip(terms[h][j], text)) for h in range(HEADS)) for j in range(GRID * GRID)])


def set_size(size):
    """The input size the maps below are made at (LeGrad's LePreprocess squashes to image_size)."""
    global SIZE, GRID, TOKENS
    SIZE, GRID, TOKENS = size, size // PATCH, 1 + (size // PATCH) ** 2


def unit(v):
    n = math.sqrt(sum(x * x for x in v))
    return [f32(x / n) for x in v]


def main():
    clip = make_tower(False)
    vit = make_tower(True)
    text_width, context, vocab = 8, 4, 6
    text_blocks = [block_weights(text_width)]
    logit_scale = f32(math.log(10.0))
    pixels = randn(3, SIZE, SIZE)
    labels = [unit(randn(EMBED)) for _ in range(4)]
    target_label, target_class = 1, 3

    tensors = {"visual.conv1.weight": clip["patch"], "visual.class_embedding": clip["cls"], "visual.positional_embedding": clip["pos"],
               "visual.ln_pre.weight": clip["ln_pre"][0], "visual.ln_pre.bias": clip["ln_pre"][1],
               "visual.ln_post.weight": clip["norm"][0], "visual.ln_post.bias": clip["norm"][1], "visual.proj": clip["proj"],
               "token_embedding.weight": randn(vocab, text_width, scale=0.5), "positional_embedding": randn(context, text_width, scale=0.1),
               "ln_final.weight": randn(text_width, scale=0.1, offset=1.0), "ln_final.bias": randn(text_width, scale=0.1),
               "text_projection": randn(text_width, EMBED, scale=text_width ** -0.5)}
    for prefix, blocks in (("visual.transformer.resblocks.", clip["blocks"]), ("transformer.resblocks.", text_blocks)):
        for i, b in enumerate(blocks):
            p = prefix + str(i) + "."
            for ours, theirs in (("ln1", "ln_1"), ("ln2", "ln_2"), ("out", "attn.out_proj"), ("fc1", "mlp.c_fc"), ("fc2", "mlp.c_proj")):
                tensors[p + theirs + ".weight"], tensors[p + theirs + ".bias"] = b[ours]
            tensors[p + "attn.in_proj_weight"], tensors[p + "attn.in_proj_bias"] = b["qkv"]
    write_safetensors("clip/open_clip_model.safetensors", dict(tensors, logit_scale=[logit_scale]))
    json.dump({"model_cfg": {"embed_dim": EMBED, "quick_gelu": True,
                             "vision_cfg": {"image_size": SIZE, "layers": LAYERS, "width": WIDTH, "patch_size": PATCH, "head_width": DH},
                             "text_cfg": {"context_length": context, "vocab_size": vocab, "width": text_width, "heads": 1, "layers": 1}},
               "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}, open("clip/open_clip_config.json", "w"), indent=1)

    tensors = {"patch_embed.proj.weight": vit["patch"], "patch_embed.proj.bias": vit["patch_bias"], "cls_token": [[vit["cls"]]],
               "pos_embed": [vit["pos"]], "norm.weight": vit["norm"][0], "norm.bias": vit["norm"][1], "head.weight": vit["head"][0],
               "head.bias": vit["head"][1]}
    for i, b in enumerate(vit["blocks"]):
        p = "blocks." + str(i) + "."
        for ours, theirs in (("ln1", "norm1"), ("ln2", "norm2"), ("qkv", "attn.qkv"), ("out", "attn.proj"), ("fc1", "mlp.fc1"), ("fc2", "mlp.fc2")):
            tensors[p + theirs + ".weight"], tensors[p + theirs + ".bias"] = b[ours]
    write_safetensors("vit/model.safetensors", tensors)
    json.dump({"architecture": "vit", "num_heads": HEADS, "img_size": SIZE, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
              open("vit/config.json", "w"), indent=1)
    write_npy("pixels.npy", [pixels])
    write_npy("labels.npy", labels)

    scale = math.exp(logit_scale)
    maps = {}
    # CLIP: logits_per_image = exp(logit_scale) * cosine; the target text is labels[target_label].
    image, taps = clip_forward(clip, pixels)
    feat = normalize(image)
    logits = [unary(lin(feat, [lab])[0], lambda v: scale * v, lambda v: scale) for lab in labels]
    maps["clip_chefer_last"] = chefer(logits[target_label], taps, -1)
    maps["clip_chefer_all"] = chefer(logits[target_label], taps, 0)
    maps["clip_gradcam_probability"] = grad_cam(softmax(logits)[target_label], taps)
    maps["clip_gradcam_logit"] = grad_cam(logits[target_label], taps)
    maps["clip_legrad"] = legrad_clip(clip, taps, labels[target_label])
    # Supervised ViT: the class logit.
    out, taps = vit_forward(vit, pixels)
    maps["vit_chefer_class"] = chefer(out[target_class], taps, 0)
    maps["vit_gradcam_class"] = grad_cam(out[target_class], taps)
    # SigLIP (timm tower, image only): LeGrad with its "a photo of a" correction, and TextSpan's map.
    siglip = make_siglip()
    siglip_text, siglip_empty = unit(randn(WIDTH)), unit(randn(WIDTH))
    tensors = {"patch_embed.proj.weight": siglip["patch"], "patch_embed.proj.bias": siglip["patch_bias"], "pos_embed": [siglip["pos"]],
               "norm.weight": siglip["norm"][0], "norm.bias": siglip["norm"][1], "attn_pool.latent": [[siglip["latent"]]]}
    for ours, theirs in (("q", "q"), ("kv", "kv"), ("proj", "proj"), ("pool_norm", "norm"), ("fc1", "mlp.fc1"), ("fc2", "mlp.fc2")):
        tensors["attn_pool." + theirs + ".weight"], tensors["attn_pool." + theirs + ".bias"] = siglip[ours]
    for i, b in enumerate(siglip["blocks"]):
        p = "blocks." + str(i) + "."
        for ours, theirs in (("ln1", "norm1"), ("ln2", "norm2"), ("qkv", "attn.qkv"), ("out", "attn.proj"), ("fc1", "mlp.fc1"), ("fc2", "mlp.fc2")):
            tensors[p + theirs + ".weight"], tensors[p + theirs + ".bias"] = b[ours]
    write_safetensors("siglip/model.safetensors", tensors)
    json.dump({"architecture": "vit_siglip", "model_args": {"num_heads": HEADS, "global_pool": "map"},
               "pretrained_cfg": {"input_size": [3, SIZE, SIZE], "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}},
              open("siglip/config.json", "w"), indent=1)
    write_npy("siglip_texts.npy", [siglip_text, siglip_empty])
    _, taps, pool_taps = siglip_forward(siglip, pixels)
    maps["siglip_legrad"] = legrad_siglip(siglip, taps, siglip_text, siglip_empty)
    maps["siglip_textspan_pool"] = textspan_siglip_map(pool_taps, siglip_text)
    write_npy("siglip_pool_terms.npy", pool_taps["terms"])  # out.post: [heads, tokens, E]
    # LeGrad at another input size (its README's LePreprocess(image_size=448); here 20 px, a 5 x 5
    # grid): the position embeddings resampled by vit_dynamic_size_forward.
    native = SIZE
    big = 20
    pixels_big = randn(3, big, big)
    set_size(big)
    image, taps = clip_forward(clip, pixels_big)
    maps["clip_legrad_20px"] = legrad_clip(clip, taps, labels[target_label])
    set_size(native)
    write_npy("pixels_20px.npy", [pixels_big])
    for name, m in maps.items():
        write_npy(name + ".npy", m)
    json.dump({"image_size": SIZE, "target_label": target_label, "target_class": target_class, "logit_scale": scale,
               "maps": sorted(maps)}, open("reference.json", "w"), indent=1)
    print("wrote", len(maps), "maps:", ", ".join(sorted(maps)))


if __name__ == "__main__":
    main()
