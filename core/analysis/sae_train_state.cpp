#include "analysis/sae_train_state.h"

#include "error.h"
#include "io/tensor_io.h"

#include <torch/nn/init.h>

#include <cmath>
#include <filesystem>
#include <limits>

namespace fs = std::filesystem;

namespace vitscope {

namespace {

constexpr double kBeta1 = 0.9, kBeta2 = 0.999, kAdamEps = 6.25e-10;  // both references' Adam
constexpr int64_t kMedianRows = 32768;                               // train.py's stats sample slice

uint64_t splitmix64(uint64_t* state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

uint64_t fnv1a(const at::Tensor& t) {
    const at::Tensor c = t.contiguous();
    const auto* bytes = static_cast<const uint8_t*>(c.data_ptr());
    uint64_t h = 1469598103934665603ULL;
    for (std::size_t i = 0; i < c.numel() * c.element_size(); ++i) h = (h ^ bytes[i]) * 1099511628211ULL;
    return h;
}

// Weiszfeld's iteration as geom_median's compute_geometric_median runs it (weights 1 / max(eps,
// distance), from the mean, at most 100 iterations, stopping when the objective stalls).
at::Tensor geometricMedian(const at::Tensor& x) {
    at::Tensor m = x.mean(0);
    double previous = std::numeric_limits<double>::infinity();
    for (int it = 0; it < 100; ++it) {
        const at::Tensor w = 1.0 / (x - m).norm(2, {1}).clamp_min(1e-8);
        m = (w.unsqueeze(1) * x).sum(0) / w.sum();
        const double objective = (x - m).norm(2, {1}).sum().item<double>();
        if (std::abs(previous - objective) <= 1e-20 * objective) break;
        previous = objective;
    }
    return m;
}

}  // namespace

at::Tensor topkRelu(const at::Tensor& pre, int k) {
    const auto top = pre.topk(k, 1);
    return at::zeros_like(pre).scatter(1, std::get<1>(top), std::get<0>(top).relu());
}

at::Tensor epochPermutation(int64_t n, uint64_t seed, int epoch) {
    uint64_t state = seed * 0x100000001B3ULL + static_cast<uint64_t>(epoch) + 1;
    std::vector<int64_t> order(static_cast<std::size_t>(n));
    for (int64_t i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
    for (int64_t i = n - 1; i > 0; --i) {
        const auto j = static_cast<int64_t>(splitmix64(&state) % static_cast<uint64_t>(i + 1));
        std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
    }
    return at::tensor(order, at::kLong);
}

at::Tensor layerNormRows(const at::Tensor& x, at::Tensor* mean, at::Tensor* std) {
    const at::Tensor mu = x.mean(1, true);
    const at::Tensor centred = x - mu;
    const at::Tensor sd = centred.std(1, true, true);
    if (mean) *mean = mu;
    if (std) *std = sd;
    return centred / (sd + 1e-5);
}

SaeTrainer::SaeTrainer(const at::Tensor& rows, const SaeTrainParams& params) : m_p(params) {
    m_rows = rows.to(at::kFloat).contiguous();
    m_dataHash = fnv1a(m_rows);
    if (m_p.kind == SaeKind::TopK && m_rows.size(0) < m_p.batch)
        throw InputError("batch", std::to_string(m_p.batch) + " is larger than the " + std::to_string(m_rows.size(0)) +
                                      " rows (topk drops the last partial batch)");
    at::NoGradGuard guard;
    prepareData();
    at::manual_seed(m_p.seed);
    if (m_p.kind == SaeKind::TopK)
        initTopK();
    else
        initMatryoshka();
    for (at::Tensor* t : {&m_wEnc, &m_bEnc, &m_wDec, &m_bPre}) {
        *t = t->contiguous().detach().requires_grad_(true);
        m_expAvg.push_back(at::zeros_like(*t));
        m_expAvgSq.push_back(at::zeros_like(*t));
    }
}

void SaeTrainer::prepareData() {
    m_x = m_p.normalize == "layer_norm" ? layerNormRows(m_rows) : m_rows.clone();
    const int64_t d = m_x.size(1);
    if (m_p.kind == SaeKind::Matryoshka) {
        m_mean = m_x.mean(0);
        const at::Tensor centred = m_x - m_mean;
        const double meanSquaredNorm =
            centred.to(at::kDouble).pow(2).sum().item<double>() / static_cast<double>(m_x.size(0));
        m_scale = std::sqrt(static_cast<double>(d)) / meanSquaredNorm;  // SAEDataset: target_norm / avg squared norm
        m_x = centred * m_scale;
    } else {
        m_mean = at::zeros({d});
        m_mseScale = 1.0 / (m_x.mean(0) - m_x).pow(2).mean().item<double>();
    }
}

void SaeTrainer::initTopK() {
    const int64_t d = m_x.size(1);
    at::Tensor w = at::empty({m_p.width, d});
    torch::nn::init::kaiming_uniform_(w, std::sqrt(5.0));  // nn.Linear(d, width)'s weight
    m_wEnc = w.t().contiguous();
    m_wDec = w / w.norm(2, {1}, true);
    m_bEnc = at::zeros({m_p.width});
    m_bPre = geometricMedian(m_x.narrow(0, 0, std::min<int64_t>(m_x.size(0), kMedianRows)));
    m_lastActive = at::zeros({m_p.width}, at::kLong);
    at::Tensor probe = at::randn({256, d});
    probe = probe / probe.norm(2, {1}, true) + m_bPre;
    const at::Tensor recon = topkForward(probe, nullptr, true);
    m_wEnc = m_wEnc / (recon - m_bPre).norm(2, {1}).mean().item<double>();
    topkForward(probe, nullptr, true);  // init_from_data_ runs the model a second time (its "out norm")
}

void SaeTrainer::initMatryoshka() {
    const int64_t d = m_x.size(1);
    at::Tensor w = at::zeros({m_p.width, d});
    torch::nn::init::kaiming_uniform_(w, 0.0, torch::kFanIn, torch::kReLU);
    m_wDec = w * (0.1 / w.norm(2, {1}, true));
    m_wEnc = m_wDec.t().clone();
    m_bEnc = at::zeros({m_p.width});
    m_bPre = at::zeros({d});
    m_lastActive = at::zeros({m_p.width}, at::kLong);
}

at::Tensor SaeTrainer::topkForward(const at::Tensor& x, at::Tensor* pre, bool updateStats) {
    const at::Tensor p = at::matmul(x - m_bPre, m_wEnc) + m_bEnc;
    const auto top = p.topk(m_p.k, 1);
    if (updateStats) {
        at::NoGradGuard guard;
        at::Tensor fired = at::zeros({m_p.width}, at::kLong);
        fired.scatter_add_(0, std::get<1>(top).flatten(), (std::get<0>(top) > 1e-3).to(at::kLong).flatten());
        m_lastActive.mul_(1 - fired.clamp_max(1)).add_(1);
    }
    if (pre) *pre = p;
    const at::Tensor latents = at::zeros_like(p).scatter(1, std::get<1>(top), std::get<0>(top).relu());
    return at::matmul(latents, m_wDec) + m_bPre;
}

at::Tensor SaeTrainer::lossTopK(const at::Tensor& x) {
    at::Tensor pre;
    const at::Tensor recon = topkForward(x, &pre, true);
    at::Tensor loss = (recon - x).pow(2).mean() * m_mseScale;
    if (m_p.auxK == 0) return loss;
    const at::Tensor dead = (m_lastActive > m_p.deadTokens / m_p.batch).to(at::kFloat);
    const auto aux = (pre * dead).topk(std::min(m_p.auxK, m_p.width), 1);
    const at::Tensor auxLatents = at::zeros_like(pre).scatter(1, std::get<1>(aux), std::get<0>(aux).relu());
    const at::Tensor auxRecon = at::matmul(auxLatents, m_wDec) + m_bPre;
    const at::Tensor target = x - recon.detach() + m_bPre.detach();
    const at::Tensor denom = (target.mean(0, true) - target).pow(2).mean();
    return loss + ((auxRecon - target).pow(2).mean() / denom).nan_to_num(0) * m_p.auxCoef;
}

int64_t SaeTrainer::stepsPerEpoch() const {
    const int64_t n = m_x.size(0);
    return m_p.kind == SaeKind::TopK ? n / m_p.batch : (n + m_p.batch - 1) / m_p.batch;
}

double SaeTrainer::learningRate(int epoch) const {
    if (m_p.kind == SaeKind::TopK) return m_p.lr;
    const int e = m_p.epochs;
    if (epoch < static_cast<int>(m_p.decayTime * e)) return m_p.lr;
    return m_p.lr * std::max(0.0, (e - epoch) / ((1.0 - m_p.decayTime) * e));
}

double SaeTrainer::trainStep(const at::Tensor& indices, int epoch) {
    const at::Tensor x = m_x.index_select(0, indices);
    at::Tensor loss;
    if (m_p.kind == SaeKind::TopK)
        loss = lossTopK(x);
    else
        loss = matryoshkaLoss(x, at::matmul(x - m_bPre, m_wEnc) + m_bEnc, m_wDec, m_bPre, m_p);
    loss.backward();
    at::NoGradGuard guard;
    normaliseDecoder();
    if (m_p.kind == SaeKind::Matryoshka && m_p.clipGrad > 0) clipGradients();
    adamStep(learningRate(epoch));
    ++m_step;
    for (at::Tensor* t : {&m_wEnc, &m_bEnc, &m_wDec, &m_bPre}) t->mutable_grad().zero_();
    return loss.item<double>();
}

// Gao: decoder rows to unit norm, then the gradient's part along each row removed. MSAE
// (scale_to_unit_norm): the same, with the encoder columns and latent bias scaled up by the norm.
void SaeTrainer::normaliseDecoder() {
    at::Tensor grad = m_wDec.mutable_grad();
    if (m_p.kind == SaeKind::TopK) {
        m_wDec.div_(m_wDec.norm(2, {1}, true));
    } else {
        const at::Tensor norm = m_wDec.norm(2, {1}, true) + std::numeric_limits<float>::epsilon();
        m_wDec.div_(norm);
        m_wEnc.mul_(norm.t());
        m_bEnc.mul_(norm.squeeze(1));
    }
    grad.sub_((grad * m_wDec).sum(1, true) * m_wDec);
}

void SaeTrainer::clipGradients() {
    std::vector<at::Tensor> norms;
    for (const at::Tensor* t : {&m_wEnc, &m_bEnc, &m_wDec, &m_bPre}) norms.push_back(t->grad().norm());
    const double total = at::stack(norms).norm().item<double>();
    const double coef = std::min(1.0, m_p.clipGrad / (total + 1e-6));
    for (at::Tensor* t : {&m_wEnc, &m_bEnc, &m_wDec, &m_bPre}) t->mutable_grad().mul_(coef);
}

// torch.optim.Adam / AdamW (weight decay 0) for one step, single-tensor path.
void SaeTrainer::adamStep(double lr) {
    const double t = static_cast<double>(m_step + 1);
    const double stepSize = lr / (1.0 - std::pow(kBeta1, t));
    const double bc2Sqrt = std::sqrt(1.0 - std::pow(kBeta2, t));
    std::size_t i = 0;
    for (at::Tensor* p : {&m_wEnc, &m_bEnc, &m_wDec, &m_bPre}) {
        const at::Tensor g = p->grad();
        m_expAvg[i].lerp_(g, 1.0 - kBeta1);
        m_expAvgSq[i].mul_(kBeta2).addcmul_(g, g, 1.0 - kBeta2);
        const at::Tensor denom = (m_expAvgSq[i].sqrt() / bc2Sqrt).add_(kAdamEps);
        p->addcdiv_(m_expAvg[i], denom, -stepSize);
        ++i;
    }
}

}  // namespace vitscope
