// Sparse autoencoders: encoding, exact attribution, token maps, top images, naming (sae.h).
#include "analysis/sae.h"

#include "analysis/cache.h"
#include "error.h"
#include "model/residual_decompose.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace vitscope {

namespace {

constexpr double kNormEps = 1e-5;  // ViT-Prisma / SAELens run_time_activation_ln_in, MSAE normalize_data

// MSAE's input affine map (identity for the other layouts).
at::Tensor preprocessInput(const SparseAutoencoder& sae, const at::Tensor& x) {
    at::Tensor y = x.to(sae.W_enc.device(), at::kFloat);
    if (sae.inputMean.defined()) y = y - sae.inputMean;
    return sae.inputScale != 1.0 ? y * sae.inputScale : y;
}

// The normalisation's frozen factor per image [B, 1] on the preprocessed input y (1 without one).
at::Tensor normFactor(const SparseAutoencoder& sae, const at::Tensor& y) {
    if (sae.normalize == SaeNormalize::LayerNorm) {
        const at::Tensor centred = y - y.mean(-1, true);
        return 1.0 / (centred.std(-1, true, true) + kNormEps);
    }
    if (sae.normalize == SaeNormalize::ConstantNorm)
        return std::sqrt(static_cast<double>(y.size(-1))) / y.norm(2, -1, true);
    return at::ones({y.size(0), 1}, y.options());
}

at::Tensor activate(const SparseAutoencoder& sae, const at::Tensor& pre) {
    at::Tensor out;
    if (sae.activation == SaeActivation::ReLU) {
        out = at::relu(pre);
    } else {
        const auto top = at::topk(pre, sae.k, -1);
        at::Tensor values = std::get<0>(top);
        if (sae.activation == SaeActivation::TopKReLU) values = at::relu(values);
        out = at::zeros_like(pre).scatter_(-1, std::get<1>(top), values);
    }
    if (sae.softCap > 0) out = at::tanh(out / sae.softCap) * sae.softCap;
    return out;
}

// The encoder columns with the centring of the linear form folded in: P(W) = W - mean over D.
at::Tensor formColumns(const SaeLinearForm& form, const at::Tensor& columns) {
    return form.centre ? columns - columns.mean(0, true) : columns;
}

// One image's rows: the active latents by activation (largest first, ties by index).
std::vector<int64_t> activeLatents(const at::Tensor& latents) {
    const at::Tensor row = latents.to(at::kCPU).contiguous();
    const float* v = row.data_ptr<float>();
    std::vector<int64_t> idx;
    for (int64_t j = 0; j < row.numel(); ++j)
        if (v[j] != 0.0f) idx.push_back(j);
    std::stable_sort(idx.begin(), idx.end(), [v](int64_t a, int64_t b) { return v[a] > v[b]; });
    return idx;
}

}  // namespace

const char* saeActivationName(SaeActivation a) {
    switch (a) {
        case SaeActivation::TopKReLU:
            return "topk";
        case SaeActivation::TopK:
            return "topk-no-relu";
        case SaeActivation::ReLU:
            return "relu";
    }
    return "?";
}

const char* saeNormalizeName(SaeNormalize n) {
    switch (n) {
        case SaeNormalize::None:
            return "none";
        case SaeNormalize::LayerNorm:
            return "layer_norm";
        case SaeNormalize::ConstantNorm:
            return "constant_norm";
    }
    return "?";
}

std::string SparseAutoencoder::site() const {
    return layer < 0 ? "output" : "layer:" + std::to_string(layer);
}

std::string SparseAutoencoder::describe() const {
    std::string s = layout + " SAE at " + site() + ", " + std::to_string(dIn()) + " -> " + std::to_string(dSae()) +
                    ", " + saeActivationName(activation);
    if (activation != SaeActivation::ReLU) s += " k=" + std::to_string(k);
    s += std::string(", normalize ") + saeNormalizeName(normalize);
    if (!subtractDecoderBias) s += ", b_dec not subtracted";
    if (inputMean.defined()) s += ", input (x - mean) * " + std::to_string(inputScale);
    if (softCap > 0) s += ", soft cap " + std::to_string(softCap);
    return s;
}

int parseSaeSite(const std::string& site, const std::string& where) {
    if (site == "output") return -1;
    if (site.rfind("layer:", 0) == 0 && site.size() > 6 && site.size() < 12 &&
        std::all_of(site.begin() + 6, site.end(), ::isdigit))
        return std::stoi(site.substr(6));
    throw InputError(where, "SAE site '" + site + "' is not output or layer:L");
}

void validateSae(const SparseAutoencoder& sae) {
    const auto shape = [](const at::Tensor& t) { return t.defined() ? t.sizes().vec() : std::vector<int64_t>{}; };
    const auto str = [](const std::vector<int64_t>& s) {
        std::string out = "[";
        for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
        return out + "]";
    };
    if (!sae.W_enc.defined() || sae.W_enc.dim() != 2)
        throw FormatError(sae.path, "W_enc is not a matrix [d_in, d_sae]: " + str(shape(sae.W_enc)));
    const int64_t d = sae.W_enc.size(0), s = sae.W_enc.size(1);
    const auto expect = [&](const char* name, const at::Tensor& t, std::vector<int64_t> want) {
        if (shape(t) != want)
            throw FormatError(sae.path, std::string(name) + " is " + str(shape(t)) + ", expected " + str(want) +
                                            " (W_enc is " + str({d, s}) + ")");
    };
    expect("b_enc", sae.b_enc, {s});
    expect("W_dec", sae.W_dec, {s, d});
    expect("b_dec", sae.b_dec, {d});
    if (sae.inputMean.defined()) expect("mean_center", sae.inputMean, {d});
    if (sae.activation != SaeActivation::ReLU && (sae.k <= 0 || sae.k > s))
        throw FormatError(sae.path, "TopK's k = " + std::to_string(sae.k) + " is not in 1.." + std::to_string(s));
}

SaeEncoding encodeSae(const SparseAutoencoder& sae, const at::Tensor& x) {
    if (x.dim() != 2 || x.size(1) != sae.dIn())
        throw InputError(sae.path, "encodes vectors of width " + std::to_string(sae.dIn()) + ", got " +
                                       std::to_string(x.dim() == 2 ? x.size(1) : -1));
    at::Tensor y = preprocessInput(sae, x);
    if (sae.normalize == SaeNormalize::LayerNorm) {
        y = y - y.mean(-1, true);
        y = y / (y.std(-1, true, true) + kNormEps);
    } else if (sae.normalize == SaeNormalize::ConstantNorm) {
        y = y * (std::sqrt(static_cast<double>(y.size(-1))) / y.norm(2, -1, true));
    }
    if (sae.subtractDecoderBias) y = y - sae.b_dec;
    SaeEncoding e;
    e.pre = at::matmul(y, sae.W_enc) + sae.b_enc;
    e.latents = activate(sae, e.pre);
    return e;
}

at::Tensor decodeSae(const SparseAutoencoder& sae, const at::Tensor& latents, const at::Tensor& x) {
    if (latents.dim() != 2 || latents.size(1) != sae.dSae() || x.dim() != 2 || x.size(1) != sae.dIn() ||
        latents.size(0) != x.size(0))
        throw InputError(sae.path, "decodes [B, " + std::to_string(sae.dSae()) + "] latents of [B, " +
                                       std::to_string(sae.dIn()) + "] inputs");
    at::Tensor out = at::matmul(latents.to(sae.W_dec.device(), at::kFloat), sae.W_dec) + sae.b_dec;
    const at::Tensor y = preprocessInput(sae, x);
    if (sae.normalize == SaeNormalize::LayerNorm) {
        const at::Tensor mean = y.mean(-1, true);
        out = out * (y - mean).std(-1, true, true) + mean;
    } else if (sae.normalize == SaeNormalize::ConstantNorm) {
        out = out / normFactor(sae, y);
    }
    if (sae.inputScale != 1.0) out = out / sae.inputScale;
    return sae.inputMean.defined() ? out + sae.inputMean : out;
}

SaeLinearForm linearizeSae(const SparseAutoencoder& sae, const at::Tensor& x) {
    const at::Tensor y = preprocessInput(sae, x);
    SaeLinearForm form;
    form.centre = sae.normalize == SaeNormalize::LayerNorm;
    const at::Tensor factor = normFactor(sae, y);  // [B, 1]
    form.scale = (factor * sae.inputScale).squeeze(1);
    const at::Tensor w = formColumns(form, sae.W_enc);
    at::Tensor bias = sae.b_enc.unsqueeze(0).expand({x.size(0), sae.dSae()}).clone();
    if (sae.subtractDecoderBias) bias -= at::matmul(sae.b_dec, sae.W_enc).unsqueeze(0);
    if (sae.inputMean.defined()) bias -= form.scale.unsqueeze(1) * at::matmul(sae.inputMean, w).unsqueeze(0);
    form.bias = bias;
    return form;
}

SaeAttribution attributeSae(const SparseAutoencoder& sae, const at::Tensor& terms,
                            const std::vector<std::string>& names, const at::Tensor& x) {
    if (terms.dim() != 3 || terms.size(0) != x.size(0) || terms.size(2) != sae.dIn() ||
        static_cast<std::size_t>(terms.size(1)) != names.size())
        throw InputError(sae.path, "attribution terms must be [B, C, " + std::to_string(sae.dIn()) + "] with C names");
    const SaeEncoding enc = encodeSae(sae, x);
    const SaeLinearForm form = linearizeSae(sae, x);
    const int64_t batch = x.size(0), c = terms.size(1);
    std::vector<std::vector<int64_t>> active(static_cast<std::size_t>(batch));
    int64_t rows = 0;
    for (int64_t b = 0; b < batch; ++b) {
        active[static_cast<std::size_t>(b)] = activeLatents(enc.latents.select(0, b));
        rows = std::max<int64_t>(rows, static_cast<int64_t>(active[static_cast<std::size_t>(b)].size()));
    }
    SaeAttribution out;
    out.latents = enc.latents.to(at::kCPU);
    out.pre = enc.pre.to(at::kCPU);
    out.components = names;
    out.components.push_back("sae_bias");
    out.active = at::full({batch, rows}, -1, at::kLong);
    out.attribution = at::zeros({batch, rows, c + 1}, at::kFloat);
    const at::Tensor t = terms.to(sae.W_enc.device(), at::kFloat);
    for (int64_t b = 0; b < batch; ++b) {
        const std::vector<int64_t>& idx = active[static_cast<std::size_t>(b)];
        if (idx.empty()) continue;
        const auto r = static_cast<int64_t>(idx.size());
        const at::Tensor sel = at::tensor(idx, at::kLong).to(sae.W_enc.device());
        const at::Tensor w = formColumns(form, sae.W_enc.index_select(1, sel));      // [D, R]
        const at::Tensor parts = at::matmul(t.select(0, b), w).t() * form.scale[b];  // [R, C]
        const at::Tensor bias = form.bias.select(0, b).index_select(0, sel);
        at::Tensor dst = out.attribution.select(0, b).narrow(0, 0, r);
        dst.narrow(1, 0, c).copy_(parts);
        dst.select(1, c).copy_(bias);
        out.active.select(0, b).narrow(0, 0, r).copy_(sel.to(at::kCPU));
        const at::Tensor err = (dst.sum(1) - out.pre.select(0, b).index_select(0, sel.to(at::kCPU))).abs().max();
        out.maxAbsError = std::max(out.maxAbsError, err.item<double>());
    }
    return out;
}

void checkSaeFitsModel(const Model& model, const SparseAutoencoder& sae) {
    const VisionTower& v = model.vision;
    if (sae.atOutput()) {
        if (sae.dIn() != v.embedDim())
            throw InputError(sae.path, "reads " + std::to_string(sae.dIn()) + "-wide outputs, but " +
                                           model.info.family + " model " + model.info.weightsPath + " outputs " +
                                           std::to_string(v.embedDim()));
        return;
    }
    if (sae.layer >= v.layers())
        throw InputError(sae.path, "reads the residual after block " + std::to_string(sae.layer) +
                                       ", but the model has " + std::to_string(v.layers()) + " blocks");
    if (sae.dIn() != v.width)
        throw InputError(sae.path, "reads a " + std::to_string(sae.dIn()) +
                                       "-wide residual stream, but the model's is " + std::to_string(v.width));
}

SaeSiteTerms saeSiteTerms(const Model& model, const SparseAutoencoder& sae, const at::Tensor& pixels, bool tokens) {
    checkSaeFitsModel(model, sae);
    SaeSiteTerms s;
    if (sae.atOutput()) {
        DecomposeOptions options;
        options.tokens = tokens;
        const Decomposition dec = decomposeImages(model, pixels, options);
        s.terms = termsByComponent(dec, &s.names);
        s.x = dec.output;
        s.maxAbsError = dec.maxAbsError;
        if (tokens) s.tokenHeads = dec.heads;
        return s;
    }
    const ResidualDecomposition dec = decomposeResidual(model, pixels, sae.layer, tokens);
    s.terms = residualTermsByComponent(dec, &s.names);
    s.x = dec.residual;
    s.maxAbsError = dec.maxAbsError;
    if (tokens) s.tokenHeads = dec.heads;
    return s;
}

SaeAttribution attributeSaeImages(const Model& model, const SparseAutoencoder& sae, const at::Tensor& pixels) {
    const SaeSiteTerms s = saeSiteTerms(model, sae, pixels, false);
    return attributeSae(sae, s.terms, s.names, s.x);
}

at::Tensor saeTokenMaps(const Model& model, const SparseAutoencoder& sae, const at::Tensor& pixels,
                        const at::Tensor& active) {
    const SaeSiteTerms s = saeSiteTerms(model, sae, pixels, true);
    if (!s.tokenHeads.defined() || s.tokenHeads.dim() != 5)
        throw InputError(model.info.weightsPath, "has no per-token head terms for a latent's token map");
    if (active.dim() != 2 || active.size(0) != s.x.size(0))
        throw InputError("active", "must be [B, R] latents for the " + std::to_string(s.x.size(0)) + " images");
    if (active.numel() > 0 && active.max().item<int64_t>() >= sae.dSae())
        throw InputError("latent " + std::to_string(active.max().item<int64_t>()),
                         "is not a latent of " + sae.path + " (0.." + std::to_string(sae.dSae() - 1) + ")");
    const at::Device device = sae.W_enc.device();
    const int64_t batch = active.size(0), rows = active.size(1), d = sae.dIn();
    const SaeLinearForm form = linearizeSae(sae, s.x);
    const at::Tensor perToken = s.tokenHeads.sum(at::IntArrayRef{1, 2}).to(device);  // [B, N, D]
    const at::Tensor idx = active.to(device, at::kLong).clamp_min(0).flatten();
    const at::Tensor w = formColumns(form, sae.W_enc).index_select(1, idx).view({d, batch, rows}).permute({1, 0, 2});
    at::Tensor maps = at::bmm(perToken, w).transpose(1, 2) * form.scale.view({batch, 1, 1});  // [B, R, N]
    maps.masked_fill_((active.to(device) < 0).unsqueeze(2), 0.0);
    return maps.to(at::kCPU).contiguous();
}

at::Tensor saeLatentTokenMap(const Model& model, const SparseAutoencoder& sae, const at::Tensor& pixels,
                             int64_t latent) {
    if (latent < 0 || latent >= sae.dSae())
        throw InputError("latent " + std::to_string(latent),
                         "is not a latent of " + sae.path + " (0.." + std::to_string(sae.dSae() - 1) + ")");
    const at::Tensor active = at::full({pixels.size(0), 1}, latent, at::kLong);
    return saeTokenMaps(model, sae, pixels, active).squeeze(1);
}

SaeTopImages topSaeImages(const DatasetCache& cache, const SparseAutoencoder& sae, int64_t latent, int count) {
    if (!sae.atOutput())
        throw InputError(
            sae.path,
            "top images from a cache need an SAE on the output (the cache stores outputs), not " + sae.site());
    if (cache.convention() != Convention::Exact)
        throw InputError(cache.dir(),
                         "stores normalised outputs (textspan convention): build the cache with --convention exact");
    if (cache.embedDim() != sae.dIn())
        throw InputError(cache.dir(), "holds " + std::to_string(cache.embedDim()) + "-wide outputs, the SAE reads " +
                                          std::to_string(sae.dIn()));
    if (latent < 0 || latent >= sae.dSae())
        throw InputError("latent " + std::to_string(latent), "is not a latent of " + sae.path);
    const at::Tensor outputs = cache.output();
    std::vector<float> values(static_cast<std::size_t>(cache.size()));
    for (int64_t start = 0; start < cache.size(); start += 1024) {
        const int64_t n = std::min<int64_t>(1024, cache.size() - start);
        const at::Tensor col =
            encodeSae(sae, outputs.narrow(0, start, n)).latents.select(1, latent).to(at::kCPU).contiguous();
        std::copy(col.data_ptr<float>(), col.data_ptr<float>() + n, values.begin() + start);
    }
    std::vector<int64_t> order(values.size());
    std::iota(order.begin(), order.end(), 0);
    const auto keep = std::min<std::size_t>(static_cast<std::size_t>(std::max(count, 0)), order.size());
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep), order.end(),
                      [&](int64_t a, int64_t b) { return values[a] > values[b] || (values[a] == values[b] && a < b); });
    SaeTopImages top;
    for (std::size_t i = 0; i < keep; ++i) {
        top.rows.push_back(order[i]);
        top.values.push_back(values[static_cast<std::size_t>(order[i])]);
        top.paths.push_back(cache.paths()[static_cast<std::size_t>(order[i])]);
    }
    return top;
}

at::Tensor saeConceptSimilarity(const SparseAutoencoder& sae, const at::Tensor& textEmbeddings) {
    if (textEmbeddings.dim() != 2 || textEmbeddings.size(1) != sae.dIn())
        throw InputError(sae.path, "names latents with " + std::to_string(sae.dIn()) + "-wide text embeddings");
    at::Tensor dirs = sae.W_dec / sae.inputScale;  // SAE.postprocess: x / scaling_factor + mean
    if (sae.inputMean.defined()) dirs = dirs + sae.inputMean;
    const at::Tensor t = textEmbeddings.to(dirs.device(), at::kFloat);
    const at::Tensor a = t / t.norm(2, 1, true), b = dirs / dirs.norm(2, 1, true);
    return at::matmul(a, b.t()).to(at::kCPU);  // [T, S]
}

std::vector<SaeLatentName> nameSaeLatents(const SparseAutoencoder& sae, const at::Tensor& textEmbeddings,
                                          const std::vector<int64_t>& latents, int top) {
    const at::Tensor sim = saeConceptSimilarity(sae, textEmbeddings);
    std::vector<int64_t> which = latents;
    if (which.empty()) {
        which.resize(static_cast<std::size_t>(sae.dSae()));
        std::iota(which.begin(), which.end(), 0);
    }
    const int64_t keep = std::min<int64_t>(std::max(top, 1), sim.size(0));
    std::vector<SaeLatentName> out;
    for (int64_t j : which) {
        if (j < 0 || j >= sae.dSae()) throw InputError("latent " + std::to_string(j), "is not a latent of " + sae.path);
        const auto best = at::topk(sim.select(1, j), keep);
        SaeLatentName n;
        n.latent = j;
        const at::Tensor idx = std::get<1>(best).contiguous(), val = std::get<0>(best).contiguous();
        n.texts.assign(idx.data_ptr<int64_t>(), idx.data_ptr<int64_t>() + keep);
        n.scores.assign(val.data_ptr<float>(), val.data_ptr<float>() + keep);
        out.push_back(n);
    }
    return out;
}

}  // namespace vitscope
