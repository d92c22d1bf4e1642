// The trainer's checkpoint (OUT.ckpt), written and read, and the trained SAE (written by writeSae).
#include "analysis/sae_train_state.h"

#include "error.h"
#include "io/tensor_io.h"

#include <filesystem>

namespace fs = std::filesystem;

namespace vitscope {

namespace {

const char* const kParamNames[] = {"w_enc", "b_enc", "w_dec", "b_pre"};

std::string checkpointPath(const SaeTrainParams& p) {
    return p.out + ".ckpt";
}

const at::Tensor& need(const StateDict& t, const std::string& name, const std::string& path) {
    const auto it = t.find(name);
    if (it == t.end()) throw FormatError(path, "has no tensor " + name);
    return it->second;
}

}  // namespace

std::string SaeTrainer::checkpointKey() const {
    return m_p.toString() + " rows=" + std::to_string(m_rows.size(0)) + " dim=" + std::to_string(m_rows.size(1)) +
           " data=" + std::to_string(m_dataHash);
}

void SaeTrainer::saveCheckpoint() const {
    StateDict t;
    const at::Tensor* params[] = {&m_wEnc, &m_bEnc, &m_wDec, &m_bPre};
    for (std::size_t i = 0; i < 4; ++i) {
        t[kParamNames[i]] = params[i]->detach();
        t[std::string("exp_avg.") + kParamNames[i]] = m_expAvg[i];
        t[std::string("exp_avg_sq.") + kParamNames[i]] = m_expAvgSq[i];
    }
    t["last_active"] = m_lastActive;
    // writeSafetensorsTensors writes PATH.partial and renames it: never half a checkpoint.
    writeSafetensorsTensors(checkpointPath(m_p), t, {{"key", checkpointKey()}, {"step", std::to_string(m_step)}});
}

void SaeTrainer::removeCheckpoint() const {
    std::error_code ec;
    fs::remove(checkpointPath(m_p), ec);
}

int64_t SaeTrainer::resume() {
    const std::string path = checkpointPath(m_p);
    std::error_code ec;
    if (!m_p.resume || !fs::exists(path, ec)) return 0;
    std::map<std::string, std::string> meta;
    const StateDict t = readSafetensorsFloat(path, &meta);
    if (meta["key"] != checkpointKey())
        throw InputError(path, "holds another run (" + meta["key"] + "); delete it or train with --no-resume");
    at::NoGradGuard guard;
    at::Tensor* params[] = {&m_wEnc, &m_bEnc, &m_wDec, &m_bPre};
    for (std::size_t i = 0; i < 4; ++i) {
        params[i]->copy_(need(t, kParamNames[i], path));
        m_expAvg[i].copy_(need(t, std::string("exp_avg.") + kParamNames[i], path));
        m_expAvgSq[i].copy_(need(t, std::string("exp_avg_sq.") + kParamNames[i], path));
    }
    m_lastActive.copy_(need(t, "last_active", path));
    try {
        m_step = std::stoll(meta["step"]);
    } catch (const std::exception&) {
        throw FormatError(path, "has no step");
    }
    return m_step;
}

SparseAutoencoder SaeTrainer::sae() const {
    SparseAutoencoder sae;
    sae.path = m_p.out;
    sae.layout = "vitscope";
    sae.layer = parseSaeSite(m_p.site, "site");
    const double s = m_scale;
    sae.W_enc = (m_wEnc.detach() * s).contiguous();
    sae.b_enc = m_bEnc.detach().clone();
    sae.W_dec = (m_wDec.detach() / s).contiguous();
    sae.b_dec = m_mean + m_bPre.detach() / s;
    sae.activation = SaeActivation::TopKReLU;
    sae.k = m_p.k;
    sae.normalize = m_p.normalize == "layer_norm" ? SaeNormalize::LayerNorm : SaeNormalize::None;
    const bool matryoshka = m_p.kind == SaeKind::Matryoshka;
    sae.objective = matryoshka ? "matryoshka" : "topk";
    std::string levels;
    for (int l : m_p.levels()) {
        levels += (levels.empty() ? "" : ",") + std::to_string(l);
        if (matryoshka && m_p.nesting == SaeNesting::Prefix) sae.groups.push_back(l);
    }
    // writeSae adds format, version, site, activation, k, normalize, objective and groups.
    sae.metadata = {{"model", m_p.model},
                    {"seed", std::to_string(m_p.seed)},
                    {"steps", std::to_string(m_step)},
                    {"training", m_p.toString()},
                    {"d_in", std::to_string(m_rows.size(1))},
                    {"d_sae", std::to_string(m_p.width)},
                    {"rows", std::to_string(m_rows.size(0))}};
    if (matryoshka) {
        sae.metadata["nesting"] = m_p.nesting == SaeNesting::K ? "k" : "prefix";
        if (m_p.nesting == SaeNesting::K) sae.metadata["nested_k"] = levels;
        sae.metadata["standardisation"] = "mean-centred, scaled by " + std::to_string(s) + " (folded into the weights)";
    }
    return sae;
}

void SaeTrainer::writeFile() const {
    writeSae(m_p.out, sae());
}

void SaeTrainer::evaluate(double* fvu, int64_t* dead) const {
    at::NoGradGuard guard;
    const SparseAutoencoder s = sae();
    const at::Tensor latents = encodeSae(s, m_rows).latents;
    const at::Tensor recon = decodeSae(s, latents, m_rows);
    *fvu = (m_rows - recon).pow(2).sum().item<double>() / (m_rows - m_rows.mean(0)).pow(2).sum().item<double>();
    *dead = ((latents > 0).sum(0) == 0).sum().item<int64_t>();
}

}  // namespace vitscope
