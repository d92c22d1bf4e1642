// The trainer's checkpoint (OUT.ckpt) and the SAE file (vitscope's format), written and read.
#include "analysis/sae_train_state.h"

#include "error.h"
#include "io/tensor_io.h"

#include <filesystem>
#include <sstream>

namespace fs = std::filesystem;

namespace vitscope {

namespace {

const char* const kParamNames[] = {"w_enc", "b_enc", "w_dec", "b_pre"};

std::string checkpointPath(const SaeTrainParams& p) {
    return p.out + ".ckpt";
}

void writeAtomically(const std::string& path, const StateDict& tensors,
                     const std::map<std::string, std::string>& metadata) {
    const std::string tmp = path + ".tmp";
    writeSafetensorsTensors(tmp, tensors, metadata);
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) throw IoError(path, "cannot be written (" + ec.message() + ")");
}

const at::Tensor& need(const StateDict& t, const std::string& name, const std::string& path) {
    const auto it = t.find(name);
    if (it == t.end()) throw FormatError(path, "has no tensor " + name);
    return it->second;
}

std::string shapeText(const at::Tensor& t) {
    std::ostringstream s;
    s << t.sizes();
    return s.str();
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
    writeAtomically(checkpointPath(m_p), t, {{"key", checkpointKey()}, {"step", std::to_string(m_step)}});
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

SaeFile SaeTrainer::file() const {
    SaeFile f;
    const double s = m_scale;
    f.wEnc = (m_wEnc.detach() * s).contiguous();
    f.bEnc = m_bEnc.detach().clone();
    f.wDec = (m_wDec.detach() / s).contiguous();
    f.bDec = m_mean + m_bPre.detach() / s;
    f.k = m_p.k;
    f.layerNorm = m_p.normalize == "layer_norm";
    const bool matryoshka = m_p.kind == SaeKind::Matryoshka;
    std::string levels;
    for (int l : m_p.levels()) levels += (levels.empty() ? "" : ",") + std::to_string(l);
    f.metadata = {{"format", "vitscope-sae"},
                  {"version", "1"},
                  {"site", m_p.site},
                  {"activation", "topk"},
                  {"k", std::to_string(m_p.k)},
                  {"normalize", m_p.normalize},
                  {"objective", matryoshka ? "matryoshka" : "topk"},
                  {"groups", matryoshka && m_p.nesting == SaeNesting::Prefix ? levels : ""},
                  {"model", m_p.model},
                  {"seed", std::to_string(m_p.seed)},
                  {"steps", std::to_string(m_step)},
                  {"training", m_p.toString()},
                  {"d_in", std::to_string(m_rows.size(1))},
                  {"d_sae", std::to_string(m_p.width)},
                  {"rows", std::to_string(m_rows.size(0))}};
    if (matryoshka) {
        f.metadata["nesting"] = m_p.nesting == SaeNesting::K ? "k" : "prefix";
        if (m_p.nesting == SaeNesting::K) f.metadata["nested_k"] = levels;
        f.metadata["standardisation"] = "mean-centred, scaled by " + std::to_string(s) + " (folded into the weights)";
    }
    return f;
}

void SaeTrainer::writeFile() const {
    const SaeFile f = file();
    writeAtomically(m_p.out, {{"W_enc", f.wEnc}, {"b_enc", f.bEnc}, {"W_dec", f.wDec}, {"b_dec", f.bDec}}, f.metadata);
}

void SaeTrainer::evaluate(double* fvu, int64_t* dead) const {
    at::NoGradGuard guard;
    const SaeFile f = file();
    const at::Tensor latents = saeEncode(f, m_rows);
    const at::Tensor recon = saeDecode(f, latents, m_rows);
    *fvu = (m_rows - recon).pow(2).sum().item<double>() / (m_rows - m_rows.mean(0)).pow(2).sum().item<double>();
    *dead = ((latents > 0).sum(0) == 0).sum().item<int64_t>();
}

SaeFile readSaeFile(const std::string& path) {
    SaeFile f;
    const StateDict t = readSafetensorsFloat(path, &f.metadata);
    if (f.metadata["format"] != "vitscope-sae") throw FormatError(path, "is not a vitscope SAE file (metadata format)");
    f.wEnc = need(t, "W_enc", path);
    f.bEnc = need(t, "b_enc", path);
    f.wDec = need(t, "W_dec", path);
    f.bDec = need(t, "b_dec", path);
    const int64_t d = f.wEnc.dim() == 2 ? f.wEnc.size(0) : -1, w = f.wEnc.dim() == 2 ? f.wEnc.size(1) : -1;
    if (d < 1 || f.bEnc.sizes() != at::IntArrayRef{w} || f.wDec.sizes() != at::IntArrayRef{w, d} ||
        f.bDec.sizes() != at::IntArrayRef{d})
        throw FormatError(path, "has inconsistent shapes: W_enc " + shapeText(f.wEnc) + ", b_enc " + shapeText(f.bEnc) +
                                    ", W_dec " + shapeText(f.wDec) + ", b_dec " + shapeText(f.bDec));
    f.topk = f.metadata["activation"] == "topk";
    f.layerNorm = f.metadata["normalize"] == "layer_norm";
    try {
        f.k = f.topk ? std::stoi(f.metadata["k"]) : 0;
    } catch (const std::exception&) {
        throw FormatError(path, "has no valid k");
    }
    if (f.topk && (f.k < 1 || f.k > w))
        throw FormatError(path, "has k " + std::to_string(f.k) + " outside 1.." + std::to_string(w));
    return f;
}

at::Tensor saeEncode(const SaeFile& sae, const at::Tensor& x) {
    if (x.dim() != 2 || x.size(1) != sae.wEnc.size(0))
        throw InputError("sae",
                         "inputs " + shapeText(x) + " do not match the SAE's d_in " + std::to_string(sae.wEnc.size(0)));
    const at::Tensor in = sae.layerNorm ? layerNormRows(x) : x;
    const at::Tensor pre = at::matmul(in - sae.bDec, sae.wEnc) + sae.bEnc;
    return sae.topk ? topkRelu(pre, sae.k) : pre.relu();
}

at::Tensor saeDecode(const SaeFile& sae, const at::Tensor& latents, const at::Tensor& x) {
    const at::Tensor out = at::matmul(latents, sae.wDec) + sae.bDec;
    if (!sae.layerNorm) return out;
    at::Tensor mean, std;
    layerNormRows(x, &mean, &std);
    return out * std + mean;
}

}  // namespace vitscope
