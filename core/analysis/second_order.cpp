#include "analysis/second_order.h"

#include "error.h"

namespace vitscope {

const char* neuronConventionName(NeuronConvention c) { return c == NeuronConvention::Exact ? "exact" : "reference"; }

NeuronConvention parseNeuronConvention(const std::string& name) {
    if (name == "reference") return NeuronConvention::Reference;
    if (name == "exact") return NeuronConvention::Exact;
    throw InputError("--convention " + name, "is not a neuron convention (reference: second_order_lens's even shares; exact: vitscope's)");
}

namespace {

Convention mapsConvention(NeuronConvention c) { return c == NeuronConvention::Exact ? Convention::Exact : Convention::TextSpan; }

}  // namespace

SecondOrderLens::SecondOrderLens(const Model& model, const SecondOrderSettings& settings) : m_model(model), m_s(settings) {
    const VisionTower& v = model.vision;
    if (v.hierarchical() || v.pool.defined() || !v.hasClassToken())
        throw InputError(model.info.weightsPath, "second-order neuron effects need a plain ViT with a class token (not Swin, MaxViT or SigLIP)");
    const int L = v.layers();
    if (settings.layer < 0 || settings.layer >= L)
        throw InputError("--layer " + std::to_string(settings.layer), "is not a layer of this model (0.." + std::to_string(L - 1) + ")");
    if (settings.layer == L - 1)
        throw InputError("--layer " + std::to_string(settings.layer),
                         "is the last block: no attention head reads its neurons, so they have no second-order effect (0.." +
                             std::to_string(L - 2) + ")");
    if (!(settings.coefficient > 0)) throw InputError("--coefficient", "must be positive");
    at::NoGradGuard noGrad;
    const Block& b = v.encoder.blocks[static_cast<std::size_t>(settings.layer)];
    m_neurons = static_cast<int>(b.fc2W.size(1));
    m_write = b.fc2W.t().contiguous();  // [M, D]
    m_writeBias = b.fc2B.defined() ? b.fc2B : at::zeros({v.width}, b.fc2W.options());
    if (b.ls2.defined()) {
        m_write = m_write * b.ls2.unsqueeze(0);
        m_writeBias = m_writeBias * b.ls2;
    }
    if (settings.convention == NeuronConvention::Exact) m_write = m_write - m_write.mean(1, true);
    const int later = L - 1 - settings.layer;
    const int64_t bytes = int64_t(later) * v.heads() * m_neurons * v.embedDim() * 4;
    if (bytes <= settings.cacheBytes) {
        std::vector<at::Tensor> parts;
        for (int l = settings.layer + 1; l < L; ++l) parts.push_back(buildMaps(l));
        m_maps.push_back(at::cat(parts, 1).contiguous());  // [M, later * H, E]
    }
}

int64_t SecondOrderLens::keptBytes() const {
    return m_maps.empty() ? 0 : m_maps.front().numel() * static_cast<int64_t>(m_maps.front().element_size());
}

at::Tensor SecondOrderLens::buildMaps(int later) const {
    const VisionTower& v = m_model.vision;
    const Block& b = v.encoder.blocks[static_cast<std::size_t>(later)];
    const int64_t d = v.width, h = v.heads(), dh = d / h;
    const at::Tensor wv = b.qkvW.narrow(0, 2 * d, d);                             // [D (out), D (in)]
    const at::Tensor r = at::matmul(m_write * b.ln1W.unsqueeze(0), wv.t());        // [M, D]: each write's value, all heads
    const at::Tensor& F = decompositionMaps(m_model, mapsConvention(m_s.convention)).headMaps[static_cast<std::size_t>(later)];  // [H, dh, E]
    return at::bmm(r.view({m_neurons, h, dh}).transpose(0, 1), F).transpose(0, 1).contiguous();  // [M, H, E]
}

SecondOrderEffects SecondOrderLens::compute(const at::Tensor& pixels) const {
    at::NoGradGuard noGrad;
    const VisionTower& v = m_model.vision;
    const NeuronTrace t = traceNeurons(m_model, pixels, m_s.layer);
    const int L = v.layers();
    const int64_t batch = pixels.size(0), h = v.heads(), d = v.width, dh = d / h, M = m_neurons;
    const bool reference = m_s.convention == NeuronConvention::Reference;
    const DecompositionMaps& maps = decompositionMaps(m_model, mapsConvention(m_s.convention));
    const int64_t e = maps.P.size(1);
    const at::Tensor sPost = at::sqrt(t.cls.var(1, false) + v.normEps).unsqueeze(1);  // [B, 1] frozen final-norm sigma
    // Per later block l and head h: c[b, n] = sum_t A[b, h, 0, t] a[b, t, n] / sigma_l[b, t], the
    // attention-weighted activation the write w_n carries through that head.
    std::vector<at::Tensor> weights;  // per later block [M, B, H]
    at::Tensor constant = at::zeros({batch, e}, maps.P.options());  // reference: what every neuron shares, times M
    // The final norm's mean and offset through the projection (each path gets a share of it).
    const at::Tensor postShare = reference ? at::matmul((-t.cls.mean(1, true) / sPost) * v.normW.unsqueeze(0) + v.normB.unsqueeze(0), maps.P)
                                           : at::Tensor();
    for (int l = m_s.layer + 1; l < L; ++l) {
        const std::size_t i = static_cast<std::size_t>(l - m_s.layer - 1);
        const at::Tensor aw = t.attnRow[i] / t.lnSigma[i].unsqueeze(1);  // [B, H, N]
        weights.push_back(at::bmm(aw, t.hidden).permute({2, 0, 1}));     // [M, B, H]
        if (!reference) continue;
        // The shares of the bias, ln_1's mean and offset, b_V, b_O and the final norm, summed over
        // the block's heads (every neuron gets 1/M of this).
        const Block& b = v.encoder.blocks[static_cast<std::size_t>(l)];
        const double k = 1.0 + 2.0 * l;
        const at::Tensor alpha = aw.sum(2, true);                              // [B, H, 1]
        const at::Tensor meanShare = (aw * t.lnMean[i].unsqueeze(1)).sum(2, true);  // [B, H, 1]
        const at::Tensor in = alpha * (b.ln1W * m_writeBias) - meanShare * b.ln1W / k + b.ln1B / k;  // [B, H, D]
        const at::Tensor wv = b.qkvW.narrow(0, 2 * d, d).view({h, dh, d});
        const at::Tensor values = at::einsum("hkd,bhd->bhk", {wv, in}) + b.qkvB.narrow(0, 2 * d, d).view({h, dh}) / k;  // [B, H, dh]
        const at::Tensor& F = maps.headMaps[static_cast<std::size_t>(l)];
        constant += (at::einsum("bhk,hke->be", {values, F}) + maps.biasTerms[static_cast<std::size_t>(l)].unsqueeze(0) / k) / sPost;
        constant += postShare / (k * (1.0 + 2.0 * L));
    }
    at::Tensor acc;  // [M, B, E]
    if (!m_maps.empty()) {
        acc = at::bmm(at::cat(weights, 2), m_maps.front());
    } else {
        acc = at::zeros({M, batch, e}, maps.P.options());
        for (int l = m_s.layer + 1; l < L; ++l)
            acc.baddbmm_(weights[static_cast<std::size_t>(l - m_s.layer - 1)].contiguous(), buildMaps(l));
    }
    SecondOrderEffects out;
    out.output = t.result.output;
    at::Tensor effects = acc.permute({1, 0, 2}) / sPost.unsqueeze(2);  // [B, M, E]
    if (reference) {
        effects = effects + (constant / static_cast<double>(M)).unsqueeze(1);
        effects = effects * (m_s.coefficient / t.result.output.norm(2, 1, true)).unsqueeze(2);
    }
    out.effects = effects.contiguous();
    out.norms = out.effects.norm(2, 2);
    return out;
}

}  // namespace vitscope
