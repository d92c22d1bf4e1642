#!/usr/bin/python3
"""Makes the reference data of test_vit_decompose: a tiny timm-layout Swin and a tiny timm-layout
MaxViT (maxvit_*_tf_* settings) with seeded random weights, two input images, and the per-component
terms that vit-decompose's walker (SriramB-98/vit-decompose, helpers/linear_decompose.py) gives on
them as its experiments call it (helpers/model_utils.py: TimmSwinModel / TimmMaxVitModel with
detach_from_res(detach_block, ...) and expand_at_points(heads=True, tokens=False); head_outputs in
helpers/decompose_utils.py), for several detach blocks.

The walker is ported rule by rule, as it acts on these graphs (not from vitscope's C++):
- decompose_layernorm: over the n terms of x, coeff = weight / sqrt(x.std(-1)**2 + 1e-5) (torch's
  std is the unbiased one), const = bias - coeff * x.mean(-1), and each term t -> coeff * t + const / n;
  x is the value the walker carries, the forward's own;
- decompose_addmm / decompose_conv: each term through the weight, bias / n added to each;
  decompose_mm (Swin's merging, no bias): each term through the weight;
- the detach hooks (detach_input on norm1 / norm2 / MBConv pre_norm, and on the detach block's input)
  make those inputs leaves: one term, the forward's value; `init` is the detach block's input;
- get_value ends the walk at softmax (its saved result), GELU (gelu of its saved input) and sigmoid:
  so an MLP branch and an MBConv branch are one term each, their forward values;
- attention: bmm of the (constant) probabilities with the value terms; the heads expand at probe_h
  (the reshape merging heads and head dim is split into zero-padded chunks, decompose_reshape with
  'expand'), then the output projection gives each chunk bias / H;
- decompose_add: [x terms, y terms] (residual first for Swin / attention units; MaxViT's MBConv adds
  shortcut + branch, so the shortcut's terms come first); rolls, reshapes, permutes, avg_pool2d and
  the mean over tokens act on each term.
collect_layer_components then reads the nest from the output: index 0 is the last block (the
reference's names, 'layer:00, attn_head:01', ... are written beside vitscope's in components.txt).

Output points: Swin, forward_head(pre_logits=True) = mean over tokens of the final LayerNorm;
MaxViT, forward_features(x).mean((-1, -2)) = mean of the last tokens before the head's LayerNorm.
Plain python3 (no numpy or torch); double precision; weights float32-representable.
Run from this folder: /usr/bin/python3 make_reference.py"""
import json
import math
import os
import random
import struct

rng = random.Random(20261207)


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


# ---- vector helpers (a field is a list of token vectors on a row-major grid) ----

def linear(x, w, b=None):
    return [sum(wi[j] * x[j] for j in range(len(x))) + (b[i] if b else 0.0) for i, wi in enumerate(w)]


def vadd(a, b):
    return [p + q for p, q in zip(a, b)]


def vscale(a, s):
    return [p * s for p in a]


def field_add(a, b):
    return [vadd(p, q) for p, q in zip(a, b)]


def layer_norm(x, w, b, eps):  # the model's own (biased variance)
    mu = sum(x) / len(x)
    var = sum((v - mu) ** 2 for v in x) / len(x)
    return [(v - mu) / math.sqrt(var + eps) * wi + bi for v, wi, bi in zip(x, w, b)]


def gelu(x):
    return 0.5 * x * (1.0 + math.erf(x / math.sqrt(2.0)))


def gelu_tanh(x):
    return 0.5 * x * (1.0 + math.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def softmax(row):
    m = max(row)
    e = [math.exp(v - m) for v in row]
    s = sum(e)
    return [v / s for v in e]


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


# ---- the walker's rules (helpers/linear_decompose.py) on lists of term fields ----

def ref_norm_coefficients(x, w, b):
    """decompose_layernorm on one token: coeff = w / sqrt(std(unbiased)^2 + 1e-5), const = b - coeff * mean."""
    mu = sum(x) / len(x)
    var = sum((v - mu) ** 2 for v in x) / (len(x) - 1)
    coeff = [wi / math.sqrt(var + 1e-5) for wi in w]
    return coeff, [bi - ci * mu for bi, ci in zip(b, coeff)]


def rule_layernorm(terms, value, w, b):
    """Each term t -> coeff * t + const / n, n the number of terms; value: the field the walker carries."""
    n = len(terms)
    out = [[] for _ in terms]
    for t, x in enumerate(value):
        coeff, const = ref_norm_coefficients(x, w, b)
        for k, term in enumerate(terms):
            out[k].append([c * v + q / n for c, v, q in zip(coeff, term[t], const)])
    return out


def rule_linear(terms, w, b):
    """decompose_addmm / decompose_conv (1x1) / decompose_mm: bias / n on each term."""
    n = len(terms)
    share = [v / n for v in b] if b else None
    return [[linear(x, w, share) for x in term] for term in terms]


def rule_mean(terms):
    """decompose_reductions (mean over tokens) on each term."""
    return [[sum(x[c] for x in term) / len(term) for c in range(len(term[0]))] for term in terms]


# ---- windows ----

def roll(field, gh, gw, dy, dx):
    """torch.roll(x, (dy, dx), dims=(1, 2)) on a row-major field."""
    return [field[((y - dy) % gh) * gw + (x - dx) % gw] for y in range(gh) for x in range(gw)]


def swin_windows(gh, gw, w):
    """window_partition: windows in row-major order, tokens row-major inside."""
    return [[(wy * w + a) * gw + wx * w + b for a in range(w) for b in range(w)] for wy in range(gh // w) for wx in range(gw // w)]


def block_partition(gh, gw, p):
    return swin_windows(gh, gw, p)


def grid_partition(gh, gw, p):
    """timm grid_partition: view(B, p, H/p, p, W/p, C).permute(0, 2, 4, 1, 3, 5): window (i2, j2), token (i1, j1)."""
    sh, sw = gh // p, gw // p
    return [[(i1 * sh + i2) * gw + j1 * sw + j2 for i1 in range(p) for j1 in range(p)] for i2 in range(sh) for j2 in range(sw)]


def attention(y_field, windows, blk, heads, bias_fn, mask_fn):
    """One window attention on the normed field (the forward): per window and head the probabilities."""
    c = len(y_field[0])
    dh = c // heads
    probs = []
    for wi, toks in enumerate(windows):
        qkv = [linear(y_field[t], blk["qkv_w"], blk["qkv_b"]) for t in toks]
        per_head = []
        for h in range(heads):
            q = [[v * dh ** -0.5 for v in r[h * dh:(h + 1) * dh]] for r in qkv]
            k = [r[c + h * dh:c + (h + 1) * dh] for r in qkv]
            rows = []
            for i in range(len(toks)):
                s = [sum(a * b for a, b in zip(q[i], k[j])) + bias_fn(h, i, j) + mask_fn(wi, i, j) for j in range(len(toks))]
                rows.append(softmax(s))
            per_head.append(rows)
        probs.append(per_head)
    return probs


def attention_output(y_field, windows, probs, blk, heads):
    """The forward's attention branch output on the token grid."""
    c = len(y_field[0])
    dh = c // heads
    out = [None] * len(y_field)
    for wi, toks in enumerate(windows):
        v = [linear(y_field[t], blk["qkv_w"], blk["qkv_b"])[2 * c:] for t in toks]
        for i, t in enumerate(toks):
            o = []
            for h in range(heads):
                a = probs[wi][h][i]
                o += [sum(a[j] * v[j][h * dh + d] for j in range(len(toks))) for d in range(dh)]
            out[t] = linear(o, blk["proj_w"], blk["proj_b"])
    return out


def reference_heads(x_field, windows, probs, blk, heads, ln_w, ln_b):
    """The walker on an attention branch whose input x is a detached leaf (one term): LayerNorm rule
    with n = 1, qkv with its full bias, the constant probabilities times the value term, the probe_h
    split into zero-padded chunks, each through proj with bias / H. Returns H fields."""
    c = len(x_field[0])
    dh = c // heads
    normed = rule_layernorm([x_field], x_field, ln_w, ln_b)[0]
    fields = [[None] * len(x_field) for _ in range(heads)]
    share = [v / heads for v in blk["proj_b"]]
    for wi, toks in enumerate(windows):
        v = [linear(normed[t], blk["qkv_w"], blk["qkv_b"])[2 * c:] for t in toks]
        for i, t in enumerate(toks):
            for h in range(heads):
                a = probs[wi][h][i]
                chunk = [0.0] * c
                for d in range(dh):
                    chunk[h * dh + d] = sum(a[j] * v[j][h * dh + d] for j in range(len(toks)))
                fields[h][t] = linear(chunk, blk["proj_w"], share)
    return fields


def mlp(x_field, blk, act):
    return [linear([act(v) for v in linear(x, blk["fc1_w"], blk["fc1_b"])], blk["fc2_w"], blk["fc2_b"]) for x in x_field]


def unit_weights(c, heads, table_shape, hidden):
    return {"ln1": (randn(c, scale=0.1, offset=1.0), randn(c, scale=0.1)), "qkv_w": randn(3 * c, c, scale=c ** -0.5),
            "qkv_b": randn(3 * c, scale=0.2), "proj_w": randn(c, c, scale=c ** -0.5), "proj_b": randn(c, scale=0.3),
            "ln2": (randn(c, scale=0.1, offset=1.0), randn(c, scale=0.1)), "fc1_w": randn(hidden, c, scale=c ** -0.5),
            "fc1_b": randn(hidden, scale=0.1), "fc2_w": randn(c, hidden, scale=hidden ** -0.5), "fc2_b": randn(c, scale=0.1),
            "table": randn(*table_shape, scale=0.5)}


def unit_tensors(prefix, u, table_name):
    return {prefix + "norm1.weight": u["ln1"][0], prefix + "norm1.bias": u["ln1"][1], prefix + "attn.qkv.weight": u["qkv_w"],
            prefix + "attn.qkv.bias": u["qkv_b"], prefix + "attn.proj.weight": u["proj_w"], prefix + "attn.proj.bias": u["proj_b"],
            prefix + "norm2.weight": u["ln2"][0], prefix + "norm2.bias": u["ln2"][1], prefix + "mlp.fc1.weight": u["fc1_w"],
            prefix + "mlp.fc1.bias": u["fc1_b"], prefix + "mlp.fc2.weight": u["fc2_w"], prefix + "mlp.fc2.bias": u["fc2_b"],
            prefix + table_name: u["table"]}


# ---- Swin (timm SwinTransformer >= 0.9 layout) ----

SWIN = {"patch": 2, "size": (16, 24), "widths": [8, 16], "heads": [2, 4], "depths": [2, 2], "window": 2, "mlp": 2}


def make_swin():
    s = SWIN
    w = s["window"]
    m = {"patch_w": randn(s["widths"][0], 3, s["patch"], s["patch"], scale=0.3), "patch_b": randn(s["widths"][0], scale=0.1),
         "patch_norm": (randn(s["widths"][0], scale=0.1, offset=1.0), randn(s["widths"][0], scale=0.1)), "stages": []}
    for i, c in enumerate(s["widths"]):
        st = {"blocks": [unit_weights(c, s["heads"][i], ((2 * w - 1) ** 2, s["heads"][i]), s["mlp"] * c) for _ in range(s["depths"][i])]}
        if i > 0:
            p = s["widths"][i - 1]
            st["merge_norm"] = (randn(4 * p, scale=0.1, offset=1.0), randn(4 * p, scale=0.3))
            st["merge_w"] = randn(c, 4 * p, scale=(4 * p) ** -0.5)
        m["stages"].append(st)
    c = s["widths"][-1]
    m["norm"] = (randn(c, scale=0.1, offset=1.0), randn(c, scale=0.3))
    m["head"] = (randn(5, c, scale=c ** -0.5), randn(5, scale=0.1))
    return m


def swin_tensors(m):
    t = {"patch_embed.proj.weight": m["patch_w"], "patch_embed.proj.bias": m["patch_b"], "patch_embed.norm.weight": m["patch_norm"][0],
         "patch_embed.norm.bias": m["patch_norm"][1]}
    for i, st in enumerate(m["stages"]):
        if i > 0:
            t["layers.%d.downsample.norm.weight" % i] = st["merge_norm"][0]
            t["layers.%d.downsample.norm.bias" % i] = st["merge_norm"][1]
            t["layers.%d.downsample.reduction.weight" % i] = st["merge_w"]
        for j, u in enumerate(st["blocks"]):
            t.update(unit_tensors("layers.%d.blocks.%d." % (i, j), u, "attn.relative_position_bias_table"))
    t.update({"norm.weight": m["norm"][0], "norm.bias": m["norm"][1], "head.fc.weight": m["head"][0], "head.fc.bias": m["head"][1]})
    return t


def patch_embed(img, w, b, p):
    gh, gw = len(img[0]) // p, len(img[0][0]) // p
    out = []
    for y in range(gh):
        for x in range(gw):
            out.append([b[o] + sum(w[o][c][a][d] * img[c][y * p + a][x * p + d] for c in range(3) for a in range(p) for d in range(p))
                        for o in range(len(w))])
    return out, gh, gw


def merge_gather(field, gh, gw):
    """reshape(H/2, 2, W/2, 2, C).permute(0, 1, 3, 4, 2, 5).flatten(3): channel blocks (dx, dy) row-major."""
    out = []
    for y in range(gh // 2):
        for x in range(gw // 2):
            v = []
            for dx in range(2):
                for dy in range(2):
                    v += field[(2 * y + dy) * gw + 2 * x + dx]
            out.append(v)
    return out


def swin_rel_bias(table, w):
    def bias(h, i, j):
        ry, rx = i // w - j // w + w - 1, i % w - j % w + w - 1
        return table[ry * (2 * w - 1) + rx][h]
    return bias


def swin_mask(gh, gw, w, shift):
    """timm's attn_mask: regions of the rolled grid (slices (0, -w), (-w, -s), (-s, None)), -100 across."""
    def region(i, n):
        return 0 if i < n - w else (1 if i < n - shift else 2)
    labels = [region(y, gh) * 3 + region(x, gw) for y in range(gh) for x in range(gw)]
    windows = swin_windows(gh, gw, w)
    return lambda wi, i, j: 0.0 if labels[windows[wi][i]] == labels[windows[wi][j]] else -100.0


def swin_block(x, gh, gw, blk, heads, w, shifted, walker):
    """The forward of one block; with `walker`, the reference's head terms and MLP term appended to it."""
    shift = w // 2 if shifted else 0
    y = [layer_norm(v, blk["ln1"][0], blk["ln1"][1], 1e-5) for v in x]
    xs = roll(x, gh, gw, -shift, -shift) if shift else x
    ys = roll(y, gh, gw, -shift, -shift) if shift else y
    windows = swin_windows(gh, gw, w)
    mask = swin_mask(gh, gw, w, shift) if shift else (lambda wi, i, j: 0.0)
    probs = attention(ys, windows, blk, heads, swin_rel_bias(blk["table"], w), mask)
    a = attention_output(ys, windows, probs, blk, heads)
    if shift:
        a = roll(a, gh, gw, shift, shift)
    x1 = field_add(x, a)
    m = mlp([layer_norm(v, blk["ln2"][0], blk["ln2"][1], 1e-5) for v in x1], blk, gelu)
    if walker is not None:
        hs = reference_heads(xs, windows, probs, blk, heads, blk["ln1"][0], blk["ln1"][1])
        walker.append([roll(f, gh, gw, shift, shift) if shift else f for f in hs])
        walker.append([m])
    return field_add(x1, m)


def swin_reference(m, img, detach):
    """(true output, the walker's terms by component [(vitscope name, reference name, vector)])."""
    s = SWIN
    x, gh, gw = patch_embed(img, m["patch_w"], m["patch_b"], s["patch"])
    x = [layer_norm(v, m["patch_norm"][0], m["patch_norm"][1], 1e-5) for v in x]
    terms, names, layer = None, None, 0
    for i, st in enumerate(m["stages"]):
        if i > 0:
            u = merge_gather(x, gh, gw)
            x = [linear(layer_norm(v, st["merge_norm"][0], st["merge_norm"][1], 1e-5), st["merge_w"]) for v in u]
            if terms is not None:
                terms = rule_linear(rule_layernorm([merge_gather(f, gh, gw) for f in terms], u, *st["merge_norm"]), st["merge_w"], None)
            gh, gw = gh // 2, gw // 2
        for j, blk in enumerate(st["blocks"]):
            if (i, j) == detach:
                terms, names = [x], ["init"]
            walker = [] if terms is not None else None
            x = swin_block(x, gh, gw, blk, s["heads"][i], s["window"], j % 2 == 1, walker)
            if walker is not None:
                terms += walker[0] + walker[1]
                names += ["%d.%d" % (layer, h) for h in range(s["heads"][i])] + ["mlp.%d" % layer]
            layer += 1
    output = [sum(v) / len(x) for v in zip(*[layer_norm(v, m["norm"][0], m["norm"][1], 1e-5) for v in x])]
    final = rule_mean(rule_layernorm(terms, x, *m["norm"]))
    return output, list(zip(names, reference_names(names, layer), final))


def reference_names(names, layers):
    """collect_layer_components / head_outputs: layers numbered from the output; MaxViT's MBConv of
    attention units (2k, 2k + 1) from the output is 'layer:(2k, 2k+1), conv'."""
    out = []
    for n in names:
        if n == "init":
            out.append("init")
        elif n.startswith("mlp."):
            out.append("layer:%02d, mlp" % (layers - 1 - int(n[4:])))
        elif n.startswith("conv."):
            k = layers // 2 - 1 - int(n[5:])
            out.append("layer:(%02d, %02d), conv" % (2 * k, 2 * k + 1))
        else:
            l, h = n.split(".")
            out.append("layer:%02d, attn_head:%02d" % (layers - 1 - int(l), int(h)))
    return out


# ---- MaxViT (timm MaxxVit, maxvit_*_tf_* settings) ----

MAXVIT = {"size": (16, 32), "stem": 8, "widths": [8, 16], "heads": [2, 4], "depths": [2, 2], "partition": 2, "expand": 4, "se": 2,
          "mlp": 2}


def bn_weights(c):
    return {"weight": randn(c, scale=0.1, offset=1.0), "bias": randn(c, scale=0.1), "running_mean": randn(c, scale=0.1),
            "running_var": [f32(0.5 + rng.random()) for _ in range(c)]}


def make_maxvit():
    s = MAXVIT
    p = s["partition"]
    m = {"stem1_w": randn(s["stem"], 3, 3, 3, scale=0.3), "stem1_b": randn(s["stem"], scale=0.1), "stem_norm": bn_weights(s["stem"]),
         "stem2_w": randn(s["stem"], s["stem"], 3, 3, scale=(9 * s["stem"]) ** -0.5), "stem2_b": randn(s["stem"], scale=0.1), "blocks": []}
    cin = s["stem"]
    for i, c in enumerate(s["widths"]):
        for j in range(s["depths"][i]):
            mid = s["expand"] * c
            b = {"stage": i, "index": j, "in": cin, "out": c, "stride": 2 if j == 0 else 1, "pre": bn_weights(cin),
                 "expand_w": randn(mid, cin, 1, 1, scale=cin ** -0.5), "norm1": bn_weights(mid), "dw_w": randn(mid, 1, 3, 3, scale=0.3),
                 "norm2": bn_weights(mid), "se1_w": randn(s["se"], mid, 1, 1, scale=mid ** -0.5), "se1_b": randn(s["se"], scale=0.1),
                 "se2_w": randn(mid, s["se"], 1, 1, scale=0.5), "se2_b": randn(mid, scale=0.1), "proj_w": randn(c, mid, 1, 1, scale=mid ** -0.5),
                 "proj_b": randn(c, scale=0.1)}
            if cin != c:
                b["short_w"], b["short_b"] = randn(c, cin, 1, 1, scale=cin ** -0.5), randn(c, scale=0.3)
            b["units"] = [unit_weights(c, s["heads"][i], (s["heads"][i], 2 * p - 1, 2 * p - 1), s["mlp"] * c) for _ in range(2)]
            m["blocks"].append(b)
            cin = c
    m["norm"] = (randn(cin, scale=0.1, offset=1.0), randn(cin, scale=0.1))
    m["head"] = (randn(5, cin, scale=cin ** -0.5), randn(5, scale=0.1))
    return m


def maxvit_tensors(m):
    t = {"stem.conv1.weight": m["stem1_w"], "stem.conv1.bias": m["stem1_b"], "stem.conv2.weight": m["stem2_w"], "stem.conv2.bias": m["stem2_b"]}
    t.update({"stem.norm1." + k: v for k, v in m["stem_norm"].items()})
    for b in m["blocks"]:
        p = "stages.%d.blocks.%d." % (b["stage"], b["index"])
        for name in ("pre", "norm1", "norm2"):
            t.update({p + "conv." + {"pre": "pre_norm", "norm1": "norm1", "norm2": "norm2"}[name] + "." + k: v for k, v in b[name].items()})
        t.update({p + "conv.conv1_1x1.weight": b["expand_w"], p + "conv.conv2_kxk.weight": b["dw_w"], p + "conv.se.fc1.weight": b["se1_w"],
                  p + "conv.se.fc1.bias": b["se1_b"], p + "conv.se.fc2.weight": b["se2_w"], p + "conv.se.fc2.bias": b["se2_b"],
                  p + "conv.conv3_1x1.weight": b["proj_w"], p + "conv.conv3_1x1.bias": b["proj_b"]})
        if "short_w" in b:
            t.update({p + "conv.shortcut.expand.weight": b["short_w"], p + "conv.shortcut.expand.bias": b["short_b"]})
        for u, unit in zip(b["units"], ("attn_block.", "attn_grid.")):
            t.update(unit_tensors(p + unit, u, "attn.rel_pos.relative_position_bias_table"))
    t.update({"head.norm.weight": m["norm"][0], "head.norm.bias": m["norm"][1], "head.fc.weight": m["head"][0], "head.fc.bias": m["head"][1]})
    return t


def conv2d(field, gh, gw, w, b, stride, groups, tf_same):
    """A k x k conv on a row-major field; stride 2 pads as TF's 'same' (extra at the end), else k // 2."""
    k, cout = len(w[0][0]), len(w)
    cin = len(field[0])
    if tf_same and stride > 1:
        pad_h, pad_w = max((-(-gh // stride) - 1) * stride + k - gh, 0), max((-(-gw // stride) - 1) * stride + k - gw, 0)
        top, left = pad_h // 2, pad_w // 2
    else:
        top = left = k // 2
        pad_h = pad_w = 2 * (k // 2)
    oh, ow = (gh + pad_h - k) // stride + 1, (gw + pad_w - k) // stride + 1
    per = cin // groups
    out = []
    for y in range(oh):
        for x in range(ow):
            v = []
            for o in range(cout):
                g = o // (cout // groups)
                acc = b[o] if b else 0.0
                for a in range(k):
                    for d in range(k):
                        yy, xx = y * stride + a - top, x * stride + d - left
                        if 0 <= yy < gh and 0 <= xx < gw:
                            src = field[yy * gw + xx]
                            acc += sum(w[o][ci][a][d] * src[g * per + ci] for ci in range(per))
                v.append(acc)
            out.append(v)
    return out, oh, ow


def batch_norm(field, bn, act=None):
    scale = [wi / math.sqrt(vi + 1e-3) for wi, vi in zip(bn["weight"], bn["running_var"])]
    out = [[(v - mu) * s + bi for v, mu, s, bi in zip(x, bn["running_mean"], scale, bn["bias"])] for x in field]
    return [[act(v) for v in x] for x in out] if act else out


def conv1x1(w):
    return [[row[c][0][0] for c in range(len(row))] for row in w]


def avg_pool2(field, gh, gw):
    return [vscale(vadd(vadd(field[2 * y * gw + 2 * x], field[2 * y * gw + 2 * x + 1]),
                        vadd(field[(2 * y + 1) * gw + 2 * x], field[(2 * y + 1) * gw + 2 * x + 1])), 0.25)
            for y in range(gh // 2) for x in range(gw // 2)]


def mbconv_branch(x, gh, gw, b):
    y = batch_norm(x, b["pre"])
    y = [linear(v, conv1x1(b["expand_w"])) for v in y]
    y = batch_norm(y, b["norm1"], gelu_tanh)
    y, oh, ow = conv2d(y, gh, gw, b["dw_w"], None, b["stride"], len(b["dw_w"]), True)
    y = batch_norm(y, b["norm2"], gelu_tanh)
    pooled = [sum(v) / len(y) for v in zip(*y)]
    gate = [sigmoid(v) for v in linear([z * sigmoid(z) for z in linear(pooled, conv1x1(b["se1_w"]), b["se1_b"])], conv1x1(b["se2_w"]), b["se2_b"])]
    y = [[v * g for v, g in zip(t, gate)] for t in y]
    return [linear(v, conv1x1(b["proj_w"]), b["proj_b"]) for v in y], oh, ow


def maxvit_rel_bias(table, p):
    def bias(h, i, j):
        return table[h][j // p - i // p + p - 1][j % p - i % p + p - 1]
    return bias


def maxvit_unit(x, gh, gw, u, heads, grid, walker):
    p = MAXVIT["partition"]
    windows = grid_partition(gh, gw, p) if grid else block_partition(gh, gw, p)
    y = [layer_norm(v, u["ln1"][0], u["ln1"][1], 1e-5) for v in x]
    probs = attention(y, windows, u, heads, maxvit_rel_bias(u["table"], p), lambda wi, i, j: 0.0)
    x1 = field_add(x, attention_output(y, windows, probs, u, heads))
    m = mlp([layer_norm(v, u["ln2"][0], u["ln2"][1], 1e-5) for v in x1], u, gelu_tanh)
    if walker is not None:
        walker += reference_heads(x, windows, probs, u, heads, u["ln1"][0], u["ln1"][1]) + [m]
    return field_add(x1, m)


def maxvit_reference_at(m, img, detach):
    """(true output, the walker's terms by component) with the detach block `detach` (stage, block)."""
    s = MAXVIT
    field = [[img[c][y][x] for c in range(3)] for y in range(len(img[0])) for x in range(len(img[0][0]))]
    x, gh, gw = conv2d(field, len(img[0]), len(img[0][0]), m["stem1_w"], m["stem1_b"], 2, 1, True)
    x = batch_norm(x, m["stem_norm"], gelu_tanh)
    x, gh, gw = conv2d(x, gh, gw, m["stem2_w"], m["stem2_b"], 1, 1, True)
    terms, names, layer, block = None, None, 0, 0
    for b in m["blocks"]:
        if (b["stage"], b["index"]) == detach:
            terms, names = [x], ["init"]
        short = avg_pool2(x, gh, gw) if b["stride"] > 1 else x
        if terms is not None and b["stride"] > 1:
            terms = [avg_pool2(f, gh, gw) for f in terms]
        if "short_w" in b:
            short = [linear(v, conv1x1(b["short_w"]), b["short_b"]) for v in short]
            if terms is not None:
                terms = rule_linear(terms, conv1x1(b["short_w"]), b["short_b"])
        br, gh, gw = mbconv_branch(x, gh, gw, b)
        x = field_add(short, br)
        if terms is not None:
            terms.append(br)
            names.append("conv.%d" % block)
        for k, u in enumerate(b["units"]):
            walker = [] if terms is not None else None
            x = maxvit_unit(x, gh, gw, u, s["heads"][b["stage"]], k == 1, walker)
            if walker is not None:
                terms += walker
                names += ["%d.%d" % (layer, h) for h in range(s["heads"][b["stage"]])] + ["mlp.%d" % layer]
            layer += 1
        block += 1
    output = [sum(v) / len(x) for v in zip(*x)]
    return output, list(zip(names, reference_names(names, layer), rule_mean(terms)))


# ---- main ----

def write_case(folder, tag, images, run):
    """Writes <tag>_terms.npy [B, K, E], <tag>_output.npy [B, E] and <tag>_components.txt."""
    outs, terms, names = [], [], None
    for img in images:
        output, comps = run(img)
        outs.append(output)
        terms.append([v for _, _, v in comps])
        names = [(a, b) for a, b, _ in comps]
    write_npy(os.path.join(folder, tag + "_terms.npy"), terms)
    write_npy(os.path.join(folder, tag + "_output.npy"), outs)
    with open(os.path.join(folder, tag + "_components.txt"), "w") as f:
        f.write("".join("%s\t%s\n" % n for n in names))
    miss = max(math.sqrt(sum((sum(t[c] for t in ts) - o[c]) ** 2 for c in range(len(o)))) / math.sqrt(sum(v * v for v in o))
               for ts, o in zip(terms, outs))
    return {"components": len(names), "output_miss": miss}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    summary = {}
    sw = make_swin()
    os.makedirs(os.path.join(here, "swin"), exist_ok=True)
    write_safetensors(os.path.join(here, "swin", "model.safetensors"), swin_tensors(sw))
    json.dump({"architecture": "swin_tiny_test", "model_args": {"img_size": SWIN["size"][0]}}, open(os.path.join(here, "swin", "config.json"), "w"), indent=1)
    h, w = SWIN["size"]
    swin_images = [randn(3, h, w, scale=1.0) for _ in range(2)]
    write_npy(os.path.join(here, "swin_pixels.npy"), swin_images)
    for detach in [(0, 0), (0, 1), (1, 1)]:
        tag = "swin_%d_%d" % detach
        summary[tag] = write_case(here, tag, swin_images, lambda img: swin_reference(sw, img, detach))
    mx = make_maxvit()
    os.makedirs(os.path.join(here, "maxvit"), exist_ok=True)
    write_safetensors(os.path.join(here, "maxvit", "model.safetensors"), maxvit_tensors(mx))
    json.dump({"architecture": "maxvit_tiny_test", "model_args": {"img_size": MAXVIT["size"][0]}}, open(os.path.join(here, "maxvit", "config.json"), "w"), indent=1)
    h, w = MAXVIT["size"]
    maxvit_images = [randn(3, h, w, scale=1.0) for _ in range(2)]
    write_npy(os.path.join(here, "maxvit_pixels.npy"), maxvit_images)
    for detach in [(0, 0), (0, 1), (1, 0)]:
        tag = "maxvit_%d_%d" % detach
        summary[tag] = write_case(here, tag, maxvit_images, lambda img: maxvit_reference_at(mx, img, detach))
    json.dump(summary, open(os.path.join(here, "reference.json"), "w"), indent=1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
