#include "analysis/splice.h"

#include "analysis/alignment.h"
#include "analysis/components.h"
#include "analysis/second_order.h"
#include "error.h"
#include "model/forward.h"
#include "parallel.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace vitscope {

namespace {

// torch.nn.functional.normalize(x, dim=-1): x / max(|x|, 1e-12), rows of a 2-D tensor.
at::Tensor normalizeRows(const at::Tensor& x) {
    return x / x.norm(2, -1, true).clamp_min(1e-12);
}

double dot(const double* a, const double* b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
    return s;
}

void axpy(double a, const double* x, double* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

// sklearn's duality gap of the positive Lasso (enet_coordinate_descent with beta = 0), in its
// unscaled units: 0.5 |R|^2 + alpha |w|_1 against the dual point R * min(1, alpha / max(X^T R)).
double dualityGap(const double* X, int64_t V, int64_t E, const std::vector<double>& w, const std::vector<double>& R,
                  const std::vector<double>& y, double alpha) {
    double dualNorm = -INFINITY, l1 = 0;
    for (int64_t j = 0; j < V; ++j) {
        dualNorm = std::max(dualNorm, dot(X + j * E, R.data(), E));
        l1 += std::abs(w[static_cast<std::size_t>(j)]);
    }
    const double rNorm2 = dot(R.data(), R.data(), E);
    double gap = rNorm2, scale = 1.0;
    if (dualNorm > alpha) {
        scale = alpha / dualNorm;
        gap = 0.5 * (rNorm2 + rNorm2 * scale * scale);
    }
    return gap + alpha * l1 - scale * dot(R.data(), y.data(), E);
}

// One cyclic pass over the coordinates; returns (largest |w_j|, largest |change of w_j|).
std::pair<double, double> coordinatePass(const double* X, const std::vector<double>& colNorm2, int64_t E, double alpha,
                                         std::vector<double>& w, std::vector<double>& R) {
    double wMax = 0, dwMax = 0;
    for (std::size_t j = 0; j < w.size(); ++j) {
        if (colNorm2[j] == 0.0) continue;
        const double* xj = X + static_cast<int64_t>(j) * E;
        const double old = w[j];
        if (old != 0.0) axpy(old, xj, R.data(), E);
        const double t = dot(xj, R.data(), E);
        w[j] = t < 0 ? 0.0 : std::max(t - alpha, 0.0) / colNorm2[j];
        if (w[j] != 0.0) axpy(-w[j], xj, R.data(), E);
        dwMax = std::max(dwMax, std::abs(w[j] - old));
        wMax = std::max(wMax, std::abs(w[j]));
    }
    return {wMax, dwMax};
}

// The reference's ADMM (splice/admm.py) for a batch: targets [B, E] -> weights [B, V] double.
// x = (2 D D^T + rho I)^-1 (2 D y + rho (z - u)) through (1/rho) (I - D (rho/2 I + D^T D)^-1 D^T).
at::Tensor admmBatch(const at::Tensor& D, const at::Tensor& targets, const SpliceParams& p, int* iterations) {
    const int64_t V = D.size(0), E = D.size(1), B = targets.size(0);
    const at::Tensor inner = at::linalg_cholesky(at::matmul(D.t(), D) + (p.rho / 2) * at::eye(E, D.options()));
    auto solve = [&](const at::Tensor& r) {  // r [V, B]
        const at::Tensor s = at::cholesky_solve(at::matmul(D.t(), r), inner);
        return (r - at::matmul(D, s)) / p.rho;
    };
    at::Generator gen = at::detail::createCPUGenerator(p.seed);
    const auto opts = D.options();
    at::randn({V, B}, gen, opts);  // the reference draws x first; its value is never used
    at::Tensor z = at::randn({V, B}, gen, opts);
    at::Tensor u = at::randn({V, B}, gen, opts);
    const at::Tensor Cb2 = 2 * at::matmul(D, targets.t());
    const double threshold = p.l1 / p.rho;
    int it = 0;
    for (; it < p.admmMaxIter; ++it) {
        const at::Tensor zOld = z;
        const at::Tensor x = solve(Cb2 + p.rho * (z - u));
        z = at::clamp_min(x + u - threshold, 0.0);
        u = u + x - z;
        const double prim = (x - z).norm(2, 0).max().item<double>();
        const double dual = (p.rho * (z - zOld)).norm(2, 0).max().item<double>();
        if (prim < p.tol && dual < p.tol) break;
    }
    *iterations = std::min(it + 1, p.admmMaxIter);
    return z.t().contiguous();
}

}  // namespace

const char* spliceSolverName(SpliceSolver s) {
    return s == SpliceSolver::Admm ? "admm" : "skl";
}

SpliceSolver parseSpliceSolver(const std::string& name) {
    if (name == "skl") return SpliceSolver::Skl;
    if (name == "admm") return SpliceSolver::Admm;
    throw InputError("solver", "unknown solver '" + name + "' (skl or admm)");
}

void SpliceParams::validate() const {
    if (!(l1 >= 0) || !std::isfinite(l1)) throw InputError("l1", "must be a finite number >= 0");
    if (maxIter < 1) throw InputError("max_iter", "must be at least 1");
    if (!(tol > 0)) throw InputError("tol", "must be > 0");
    if (!(rho > 0)) throw InputError("rho", "must be > 0");
    if (admmMaxIter < 1) throw InputError("admm_max_iter", "must be at least 1");
}

std::string SpliceParams::toString() const {
    std::ostringstream s;
    s << "l1=" << l1 << " solver=" << spliceSolverName(solver);
    if (solver == SpliceSolver::Skl)
        s << " max_iter=" << maxIter << " tol=" << tol;
    else
        s << " rho=" << rho << " max_iter=" << admmMaxIter << " tol=" << tol << " seed=" << seed;
    return s.str();
}

at::Tensor spliceDictionary(const at::Tensor& vocabulary) {
    if (vocabulary.dim() != 2 || vocabulary.size(0) < 1) throw InputError("vocabulary", "must be [V, E] with V >= 1");
    const at::Tensor t = normalizeRows(vocabulary.to(at::kCPU, at::kDouble));
    return normalizeRows(t - t.mean(0, true)).contiguous();
}

at::Tensor spliceMean(const at::Tensor& embeddings) {
    if (embeddings.dim() != 2 || embeddings.size(0) < 1) throw InputError("embeddings", "must be [N, E] with N >= 1");
    return normalizeRows(embeddings.to(at::kCPU, at::kDouble)).mean(0).to(at::kFloat);
}

std::vector<double> lassoPositive(const at::Tensor& dictionary, const std::vector<double>& y, double alpha, int maxIter,
                                  double tol, int* epochs) {
    const int64_t V = dictionary.size(0), E = dictionary.size(1);
    const double* X = dictionary.data_ptr<double>();  // column j of sklearn's X = row j of D
    std::vector<double> colNorm2(static_cast<std::size_t>(V)), w(static_cast<std::size_t>(V), 0.0), R = y;
    for (int64_t j = 0; j < V; ++j) colNorm2[static_cast<std::size_t>(j)] = dot(X + j * E, X + j * E, E);
    const double gapTol = tol * dot(y.data(), y.data(), E);
    int n = 0;
    for (; n < maxIter; ++n) {
        const auto [wMax, dwMax] = coordinatePass(X, colNorm2, E, alpha, w, R);
        if (wMax == 0.0 || dwMax / wMax < tol || n == maxIter - 1) {
            if (dualityGap(X, V, E, w, R, y, alpha) < gapTol) break;
        }
    }
    if (epochs) *epochs = std::min(n + 1, maxIter);
    return w;
}

SpliceResult runSplice(const at::Tensor& vocabulary, const at::Tensor& mean, const at::Tensor& embeddings,
                       const SpliceParams& params, const JobContext& job) {
    params.validate();
    const at::Tensor D = spliceDictionary(vocabulary);
    const int64_t V = D.size(0), E = D.size(1);
    if (mean.dim() != 1 || mean.size(0) != E)
        throw InputError("image mean", "has " + std::to_string(mean.numel()) +
                                           " values; the vocabulary's embeddings have " + std::to_string(E));
    if (embeddings.dim() != 2 || embeddings.size(1) != E)
        throw InputError("embeddings", "must be [B, " + std::to_string(E) + "] (the vocabulary's embedding size)");
    const at::Tensor m = mean.to(at::kCPU, at::kDouble).unsqueeze(0);
    const at::Tensor image = normalizeRows(embeddings.to(at::kCPU, at::kDouble));
    const at::Tensor targets = normalizeRows(image - m).contiguous();
    const int64_t B = targets.size(0);
    at::Tensor w = at::zeros({B, V}, D.options());
    std::vector<int> iterations(static_cast<std::size_t>(B), 0);
    if (params.solver == SpliceSolver::Admm && B > 0) {
        int it = 0;
        w = admmBatch(D, targets, params, &it);
        std::fill(iterations.begin(), iterations.end(), it);
    } else {
        const double alpha = params.l1 / 2.0;  // sklearn's alpha l1 / (2E) times its n_samples E
        splitAcrossCores(B, [&](int64_t begin, int64_t end) {
            for (int64_t b = begin; b < end && !job.cancelled(); ++b) {
                const double* t = targets[b].data_ptr<double>();
                const std::vector<double> wb = lassoPositive(D, std::vector<double>(t, t + E), alpha, params.maxIter,
                                                             params.tol, &iterations[static_cast<std::size_t>(b)]);
                std::copy(wb.begin(), wb.end(), w[b].data_ptr<double>());
            }
        });
        if (job.cancelled()) throw JobCancelled();
    }
    const at::Tensor recon = normalizeRows(normalizeRows(at::matmul(w, D)) + m);
    SpliceResult r;
    r.cosine = (recon * image).sum(1).to(at::kFloat);
    r.weights = w.to(at::kFloat);
    r.iterations = std::move(iterations);
    return r;
}

std::vector<SpliceConcept> spliceConcepts(const at::Tensor& weightsRow, const std::vector<std::string>& texts,
                                          int count) {
    const at::Tensor w = weightsRow.to(at::kCPU, at::kDouble).contiguous();
    if (w.numel() != static_cast<int64_t>(texts.size()))
        throw InputError("weights", "do not match the vocabulary's size");
    std::vector<SpliceConcept> out;
    const double* p = w.data_ptr<double>();
    for (int64_t i = 0; i < w.numel(); ++i)
        if (p[i] > 0) out.push_back({i, texts[static_cast<std::size_t>(i)], p[i]});
    std::stable_sort(out.begin(), out.end(),
                     [](const SpliceConcept& a, const SpliceConcept& b) { return a.weight > b.weight; });
    if (count >= 0 && static_cast<int>(out.size()) > count) out.resize(static_cast<std::size_t>(count));
    return out;
}

namespace {

// "a.b.c" -> numbers after `prefix` split at '.', or an InputError naming the component.
std::vector<int> componentNumbers(const std::string& name, std::size_t skip, std::size_t count,
                                  const std::string& form) {
    std::vector<int> out;
    std::string rest = name.substr(skip) + ".";
    for (std::size_t pos = 0; pos < rest.size();) {
        const std::size_t dot = rest.find('.', pos);
        const std::string part = rest.substr(pos, dot - pos);
        if (part.empty() || part.size() > 7 || part.find_first_not_of("0123456789") != std::string::npos) break;
        out.push_back(std::stoi(part));
        pos = dot + 1;
    }
    if (out.size() != count) throw InputError("component '" + name + "'", "expected " + form);
    return out;
}

// neuron.L.N: the neuron's second-order effect (exact convention: its own write, in output units).
at::Tensor neuronTargets(const Model& model, const Aligner* aligner, const at::Tensor& pixels,
                         const std::string& name) {
    if (aligner || !model.isClip())
        throw InputError("component '" + name + "'", "neurons need a CLIP model (no aligner maps a neuron's effect)");
    const std::vector<int> ln = componentNumbers(name, 7, 2, "neuron.LAYER.NEURON");
    SecondOrderSettings s;
    s.layer = ln[0];
    s.convention = NeuronConvention::Exact;
    const SecondOrderLens lens(model, s);
    if (ln[1] >= lens.neurons())
        throw InputError("component '" + name + "'",
                         "no such neuron: block " + std::to_string(ln[0]) + " has " + std::to_string(lens.neurons()));
    return lens.compute(pixels).effects.select(1, ln[1]).to(at::kCPU, at::kFloat);
}

// L.H@T: head L.H's term from source token T.
at::Tensor headTokenTargets(const Model& model, const Aligner* aligner, const at::Tensor& pixels,
                            const std::string& name) {
    const std::size_t at = name.find('@');
    const std::vector<int> lh = componentNumbers(name.substr(0, at), 0, 2, "LAYER.HEAD@TOKEN");
    const std::vector<int> t = componentNumbers(name.substr(at + 1), 0, 1, "LAYER.HEAD@TOKEN");
    DecomposeOptions o;
    o.tokens = true;
    if (model.vision.pool.defined() || model.vision.hierarchical())
        throw InputError("component '" + name + "'",
                         "per-token heads need a plain ViT (no attention pool, not Swin / MaxViT)");
    const Decomposition dec = decomposeImages(model, pixels, o);
    const int64_t L = dec.heads.size(1), H = dec.heads.size(2), N = dec.heads.size(3);
    if (lh[0] >= L || lh[1] >= H || t[0] >= N)
        throw InputError("component '" + name + "'", "out of range: the model has " + std::to_string(L) + " layers x " +
                                                         std::to_string(H) + " heads and " + std::to_string(N) +
                                                         " tokens (zero-based)");
    const at::Tensor term = dec.heads.select(1, lh[0]).select(1, lh[1]).select(1, t[0]).to(at::kCPU, at::kFloat);
    if (!aligner) return term;
    return at::matmul(term, aligner->weightFor(name.substr(0, at)).to(at::kCPU, at::kFloat));
}

}  // namespace

at::Tensor spliceTargetsFor(const Model& model, const Aligner* aligner, const at::Tensor& pixels,
                            const std::string& component) {
    at::NoGradGuard noGrad;
    const at::Tensor x = pixels.to(model.vision.device());
    if (component.rfind("neuron.", 0) == 0) return neuronTargets(model, aligner, x, component);
    if (component.find('@') != std::string::npos) return headTokenTargets(model, aligner, x, component);
    if (component.empty() && !aligner) return encodeImages(model, x).output.to(at::kCPU, at::kFloat);
    const Decomposition dec = decomposeImages(model, x, DecomposeOptions{});
    std::vector<std::string> names;
    const at::Tensor terms =
        (aligner ? stackedTerms(dec, &names) : termsByComponent(dec, &names)).to(at::kCPU, at::kFloat);
    if (component.empty()) return applyToTerms(*aligner, terms);  // the output through the aligner
    const auto it = std::find(names.begin(), names.end(), component);
    if (it == names.end())
        throw InputError(
            "component '" + component + "'",
            "unknown: names are embed, L.H, L.H@T, mlp.L, attn_bias, post_bias (aligned: attn_bias is one term), "
            "neuron.L.N; zero-based");
    const at::Tensor term = terms.select(1, it - names.begin());
    if (aligner && !alignerMaps(aligner, component))
        throw InputError("component '" + component + "'", "the aligner has no map for it");
    return aligner ? alignedTerm(term, component, aligner) : term;
}

}  // namespace vitscope
