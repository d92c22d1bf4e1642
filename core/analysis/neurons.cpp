#include "analysis/neurons.h"

#include "analysis/property.h"
#include "error.h"
#include "model/forward.h"
#include "io/safetensors.h"
#include "io/tensor_io.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

namespace vitscope {

namespace {

// The first principal direction (no centring) of each neuron's picked effects [s, k, E], signed so
// that more than topK / 2 of them project positively (compute_pcas.py's rule).
at::Tensor signedFirstDirection(const at::Tensor& picked, int topK) {
    const at::Tensor vh = std::get<2>(at::linalg_svd(picked, false));  // [s, min(k, E), E]
    const at::Tensor first = vh.select(1, 0);                          // [s, E]
    const at::Tensor positive = (at::matmul(picked, first.unsqueeze(2)).squeeze(2) > 0).sum(1);  // [s]
    return at::where((positive > topK / 2).unsqueeze(1), first, -first);
}

}  // namespace

NeuronDirections neuronPrincipalDirections(const at::Tensor& effects, int topK, const JobContext& job) {
    if (effects.dim() != 3) throw InputError("effects", "expected [images, neurons, E]");
    if (topK < 1) throw InputError("--top-k", "must be at least 1");
    const int64_t n = effects.size(0), m = effects.size(1), e = effects.size(2);
    if (n < 1 || m < 1 || e < 1) throw InputError("effects", "holds no effects");
    const int64_t k = std::min<int64_t>(topK, n);
    // Neurons per slice: a slice of every image's effects stays near 256 MB.
    const int64_t slice = std::max<int64_t>(1, std::min<int64_t>(m, (int64_t(256) << 20) / std::max<int64_t>(1, n * e * 4)));
    NeuronDirections out;
    out.directions = at::empty({m, e}, at::kFloat);
    out.topNorms = at::empty({m, k}, at::kFloat);
    out.topImages = at::empty({m, k}, at::kLong);
    out.mean = at::empty({m, e}, at::kFloat);
    for (int64_t m0 = 0; m0 < m; m0 += slice) {
        if (job.cancelled()) throw JobCancelled();
        const int64_t s = std::min(slice, m - m0);
        const at::Tensor x = effects.narrow(1, m0, s).to(at::kFloat).contiguous();  // [N, s, E]
        const at::Tensor mean = x.mean(0);                                         // [s, E]
        const at::Tensor centred = x - mean.unsqueeze(0);
        const at::Tensor norms = centred.norm(2, 2);                                // [N, s]
        const at::Tensor order = std::get<1>(norms.sort(0)).narrow(0, n - k, k);     // [k, s] ascending, the largest k
        const at::Tensor picked = centred.permute({1, 0, 2}).gather(1, order.t().unsqueeze(2).expand({s, k, e}));  // [s, k, E]
        out.directions.narrow(0, m0, s).copy_(signedFirstDirection(picked, topK));
        out.topNorms.narrow(0, m0, s).copy_(norms.gather(0, order).t());
        out.topImages.narrow(0, m0, s).copy_(order.t());
        out.mean.narrow(0, m0, s).copy_(mean);
        job.report({m0 + s, m, 0, 0, "principal directions"});
    }
    return out;
}

void writeNeuronDirections(const std::string& dir, const NeuronDirections& d) {
    const auto file = [&](const char* name) { return (std::filesystem::path(dir) / name).string(); };
    writeNpyTensor(file("directions.npy"), d.directions);
    writeNpyTensor(file("top_norms.npy"), d.topNorms);
    writeNpyTensor(file("top_images.npy"), d.topImages);
    writeNpyTensor(file("mean.npy"), d.mean);
}

NeuronDirections readNeuronDirections(const std::string& dir) {
    const auto file = [&](const char* name) { return (std::filesystem::path(dir) / name).string(); };
    NeuronDirections d;
    d.directions = readNpyTensor(file("directions.npy")).to(at::kFloat);
    d.topNorms = readNpyTensor(file("top_norms.npy")).to(at::kFloat);
    d.topImages = readNpyTensor(file("top_images.npy")).to(at::kLong);
    d.mean = readNpyTensor(file("mean.npy")).to(at::kFloat);
    if (d.directions.dim() != 2 || d.mean.sizes() != d.directions.sizes() || d.topNorms.dim() != 2 ||
        d.topNorms.size(0) != d.directions.size(0) || d.topImages.sizes() != d.topNorms.sizes())
        throw FormatError(dir, "holds neuron arrays of different neuron counts or shapes");
    return d;
}

namespace {

std::string shapeTextOf(int64_t images, int64_t neurons, int64_t dim, int topK, int64_t from, int64_t to) {
    return std::to_string(images) + "," + std::to_string(neurons) + "," + std::to_string(dim) + "," + std::to_string(topK) + "," +
           std::to_string(from) + "-" + std::to_string(to);
}

struct SavedState {
    int pass = 0;
    int64_t done = -1;
};

// A saved summary state's pass and image count, after its key and shape are checked against ours.
SavedState checkedState(const SafetensorsFile& file, const std::string& key, const std::string& shape) {
    const auto& meta = file.view().metadata;
    const auto field = [&](const char* name) {
        const auto it = meta.find(name);
        if (it == meta.end()) throw FormatError(file.path(), std::string("is not a neuron summary's saved state (no ") + name + ")");
        return it->second;
    };
    if (field("key") != key || field("shape") != shape)
        throw FormatError(file.path(), "holds the state of another neuron summary (model, layer, convention, images, top-k or shard differ)");
    SavedState s;
    try {
        s.pass = std::stoi(field("pass"));
        s.done = std::stoll(field("done"));
    } catch (const std::exception&) {
        throw FormatError(file.path(), "records no pass or image count");
    }
    return s;
}

at::Tensor stateTensor(const SafetensorsFile& file, const char* name, at::ScalarType type, const std::vector<int64_t>& sizes) {
    const TensorEntry* e = file.view().find(name);
    if (!e) throw FormatError(file.path(), std::string("lacks ") + name);
    at::Tensor t = entryToTensor(file.view(), *e);
    if (t.scalar_type() != type || t.sizes().vec() != sizes) throw FormatError(file.path(), std::string(name) + " has the wrong type or shape");
    return t;
}

}  // namespace

namespace {

// The k best candidates per neuron (norms [M, c], images [M, c], effects [M, c, E], the real
// images in increasing order along c): the larger norm first, the earlier image among equal norms
// (a stable sort); returned in image order (unfilled places, image -1, first).
void keepTop(at::Tensor& norms, at::Tensor& images, at::Tensor& effects, int64_t k) {
    const at::Tensor best = std::get<1>(norms.sort(true, 1, true)).narrow(1, 0, k);     // [M, k]
    const at::Tensor inOrder = std::get<1>(images.gather(1, best).sort(true, 1, false));  // by image
    const at::Tensor keep = best.gather(1, inOrder);
    norms = norms.gather(1, keep);
    images = images.gather(1, keep);
    effects = effects.gather(1, keep.unsqueeze(2).expand({keep.size(0), k, effects.size(2)})).contiguous();
}

}  // namespace

NeuronSummaryBuilder::NeuronSummaryBuilder(int64_t images, int64_t neurons, int64_t dim, int topK, int64_t from, int64_t to)
    : m_images(images), m_neurons(neurons), m_dim(dim), m_k(std::min<int64_t>(topK, images)), m_topK(topK), m_from(from),
      m_to(to < 0 ? images : to) {
    if (topK < 1) throw InputError("--top-k", "must be at least 1");
    if (images < 1 || neurons < 1 || dim < 1) throw InputError("neuron summary", "needs images, neurons and an embedding");
    if (m_from < 0 || m_from > m_to || m_to > images || m_from % kChunk != 0)
        throw InputError("neuron summary", "a part must lie within the images and start at a multiple of " + std::to_string(kChunk));
    if (size() == 0) {  // an empty part: its pass 1 is finished as it starts
        m_sum.close();
        m_pass = 2;
    }
}

void NeuronSummaryBuilder::add(const at::Tensor& effects) {
    if (m_pass > 2) throw InputError("neuron summary", "both passes are finished");
    if (waitingForMean()) throw InputError("neuron summary", "pass 2 needs the mean of every part's pass 1 first");
    if (effects.dim() != 3 || effects.size(1) != m_neurons || effects.size(2) != m_dim || effects.size(0) > size() - m_done)
        throw InputError("neuron summary", "effects of the wrong shape or beyond the pass's images");
    const int64_t b = effects.size(0);
    const at::Tensor x = effects.to(at::kCPU, at::kFloat);
    if (m_pass == 1) {
        m_sum.add(m_from + m_done, x);
        if ((m_done += b) < size()) return;
        m_sum.close();
        m_pass = 2;
        m_done = 0;
        if (whole()) setMean(meanOf({m_sum}, m_images));
        return;
    }
    const at::Tensor centred = (x - m_mean.unsqueeze(0)).permute({1, 0, 2});  // [M, B, E]
    const at::Tensor rows = at::arange(m_from + m_done, m_from + m_done + b, at::kLong).unsqueeze(0).expand({m_neurons, b});
    at::Tensor norms = at::cat({m_topNorms, centred.norm(2, 2)}, 1);  // [M, k + B]
    at::Tensor images = at::cat({m_topImages, rows}, 1);
    at::Tensor top = at::cat({m_topEffects, centred}, 1);
    keepTop(norms, images, top, m_k);
    m_topNorms = norms;
    m_topImages = images;
    m_topEffects = top;
    if ((m_done += b) == size()) m_pass = 3;
}

at::Tensor NeuronSummaryBuilder::meanOf(const std::vector<OrderedSum>& parts, int64_t images) {
    OrderedSum all(kChunk);
    all.close();  // (an empty part the parts join)
    for (const OrderedSum& p : parts) all.absorb(p);
    if (all.empty() || all.next() != images) throw InputError("neuron summary", "the parts' sums do not cover the images");
    return (all.total() / static_cast<double>(images)).to(at::kFloat);
}

void NeuronSummaryBuilder::setMean(const at::Tensor& mean) {
    if (!waitingForMean()) throw InputError("neuron summary", "the mean is set once, when pass 1 is finished");
    if (mean.dim() != 2 || mean.size(0) != m_neurons || mean.size(1) != m_dim) throw InputError("neuron summary", "mean of the wrong shape");
    m_mean = mean.to(at::kCPU, at::kFloat).contiguous();
    m_topNorms = at::full({m_neurons, m_k}, -std::numeric_limits<float>::infinity(), at::kFloat);
    m_topImages = at::full({m_neurons, m_k}, -1, at::kLong);
    m_topEffects = at::zeros({m_neurons, m_k, m_dim}, at::kFloat);
    if (size() == 0) m_pass = 3;
}

void NeuronSummaryBuilder::absorb(const NeuronSummaryBuilder& later) {
    if (m_pass != 3 || later.m_pass != 3) throw InputError("neuron summary", "only finished parts can be joined");
    if (later.shapeText() != shapeTextOf(m_images, m_neurons, m_dim, m_topK, later.m_from, later.m_to) || later.m_from != m_to)
        throw InputError("neuron summary", "the later part is not of the same summary or does not start where this one ends");
    if (!at::equal(later.m_mean, m_mean)) throw InputError("neuron summary", "the parts were summarised with different means");
    m_sum.absorb(later.m_sum);
    at::Tensor norms = at::cat({m_topNorms, later.m_topNorms}, 1);
    at::Tensor images = at::cat({m_topImages, later.m_topImages}, 1);
    at::Tensor top = at::cat({m_topEffects, later.m_topEffects}, 1);
    keepTop(norms, images, top, m_k);
    m_topNorms = norms;
    m_topImages = images;
    m_topEffects = top;
    m_to = later.m_to;
    m_done = size();
}

NeuronDirections NeuronSummaryBuilder::finish() const {
    if (m_pass != 3 || !whole()) throw InputError("neuron summary", "the second pass over the images is not finished");
    NeuronDirections out;
    const auto [sorted, order] = m_topNorms.sort(true, 1, false);  // ascending, as the reference's np.sort(...)[-k:]
    out.topNorms = sorted;
    out.topImages = m_topImages.gather(1, order);
    out.mean = m_mean;
    out.directions = at::empty({m_neurons, m_dim}, at::kFloat);
    for (int64_t m0 = 0; m0 < m_neurons; m0 += 256) {  // SVDs in slices of neurons
        const int64_t s = std::min<int64_t>(256, m_neurons - m0);
        const at::Tensor picked = m_topEffects.narrow(0, m0, s).gather(1, order.narrow(0, m0, s).unsqueeze(2).expand({s, m_k, m_dim}));
        out.directions.narrow(0, m0, s).copy_(signedFirstDirection(picked, m_topK));
    }
    return out;
}

std::string NeuronSummaryBuilder::shapeText() const { return shapeTextOf(m_images, m_neurons, m_dim, m_topK, m_from, m_to); }

void NeuronSummaryBuilder::save(const std::string& path, const std::string& key) const {
    StateDict t;
    m_sum.save(t, "sum");
    if (m_mean.defined()) {
        t["mean"] = m_mean;
        t["top_norms"] = m_topNorms;
        t["top_images"] = m_topImages;
        t["top_effects"] = m_topEffects;
    }
    const std::map<std::string, std::string> meta{
        {"key", key}, {"pass", std::to_string(m_pass)}, {"done", std::to_string(m_done)}, {"shape", shapeText()}};
    writeSafetensorsTensors(path, t, meta);
}

bool NeuronSummaryBuilder::restore(const std::string& path, const std::string& key) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return false;
    const SafetensorsFile file(path);
    const SavedState s = checkedState(file, key, shapeText());
    if (s.pass < 1 || s.pass > 3 || s.done < 0 || s.done > size() || (s.pass == 1 && s.done == size()) || (s.pass == 3 && s.done != size()))
        throw FormatError(path, "records an impossible pass or image count");
    OrderedSum sum(kChunk);
    sum.restore(file.view(), "sum", path);
    const bool sumsAgree = s.pass == 1 ? !sum.closed() && (s.done == 0 ? sum.empty() : sum.next() == m_from + s.done)
                                       : sum.closed() && (size() == 0 ? sum.empty() : sum.next() == m_to);
    const bool hasMean = file.view().find("mean") != nullptr;
    if (!sumsAgree || (s.pass == 1 && hasMean) || ((s.pass == 3 || s.done > 0) && s.pass > 1 && !hasMean))
        throw FormatError(path, "holds sums or means that do not match its pass");
    if (hasMean) {
        m_mean = stateTensor(file, "mean", at::kFloat, {m_neurons, m_dim});
        m_topNorms = stateTensor(file, "top_norms", at::kFloat, {m_neurons, m_k});
        m_topImages = stateTensor(file, "top_images", at::kLong, {m_neurons, m_k});
        m_topEffects = stateTensor(file, "top_effects", at::kFloat, {m_neurons, m_k, m_dim});
    } else {
        m_mean = m_topNorms = m_topImages = m_topEffects = at::Tensor();
    }
    m_sum = std::move(sum);
    m_pass = s.pass;
    m_done = s.done;
    return true;
}

bool NeuronSummaryBuilder::finishedSums(const std::string& path, const std::string& key, OrderedSum& out) const {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return false;
    const SafetensorsFile file(path);
    if (checkedState(file, key, shapeText()).pass < 2) return false;
    OrderedSum sum(kChunk);
    sum.restore(file.view(), "sum", path);
    if (!sum.closed()) throw FormatError(path, "records pass 2 but its sums are not closed");
    out = std::move(sum);
    return true;
}

void feedNeuronSummary(NeuronSummaryBuilder& b, const SecondOrderLens& lens, const NeuronPixelBatches& pixels, int batch,
                       const JobContext& job, const std::string& statePath, const std::string& key, int64_t saveEvery) {
    if (batch < 1) throw InputError("--batch", "must be at least 1");
    const int64_t size = b.to() - b.from(), chunk = NeuronSummaryBuilder::kChunk;
    int64_t sinceSave = 0;
    at::NoGradGuard noGrad;
    while (b.pass() < 3 && !b.waitingForMean()) {
        if (job.cancelled()) {
            if (!statePath.empty()) b.save(statePath, key);
            throw JobCancelled();
        }
        const int64_t start = b.from() + b.done(), chunkEnd = (start / chunk + 1) * chunk;
        const int64_t n = std::min<int64_t>({batch, b.to() - start, chunkEnd - start});
        b.add(lens.compute(pixels(start, n)).effects);
        sinceSave += n;
        const bool passEnded = b.pass() == 3 ? !b.whole() : b.done() == 0;  // (done 0 in pass 2: pass 1 just ended)
        if (!statePath.empty() && (sinceSave >= saveEvery || passEnded)) {
            b.save(statePath, key);
            sinceSave = 0;
        }
        const int64_t progress = b.pass() == 3 ? 2 * size : (b.pass() - 1) * size + b.done();
        job.report({progress, 2 * size, 0, 0, b.pass() == 1 || b.waitingForMean() ? "neuron means (pass 1 of 2)" : "neurons' top images (pass 2 of 2)"});
    }
}

NeuronDirections summariseNeurons(const SecondOrderLens& lens, int64_t count, const NeuronPixelBatches& pixels, int topK, int batch,
                                  const JobContext& job, const std::string& statePath, const std::string& key, int64_t saveEvery) {
    if (batch < 1) throw InputError("--batch", "must be at least 1");
    NeuronSummaryBuilder b(count, lens.neurons(), lens.embedDim(), topK);
    if (!statePath.empty()) b.restore(statePath, key);
    feedNeuronSummary(b, lens, pixels, batch, job, statePath, key, saveEvery);
    return b.finish();
}

at::Tensor referenceTextDictionary(const at::Tensor& texts, double coefficient) {
    const at::Tensor centred = texts - texts.mean(0, true);
    return coefficient * centred / centred.norm(2, 0, true);
}

SparseCodes orthogonalMatchingPursuit(const at::Tensor& dictionary, const at::Tensor& targets, int nonzero) {
    if (dictionary.dim() != 2 || targets.dim() != 2 || dictionary.size(1) != targets.size(1))
        throw InputError("orthogonal matching pursuit", "needs a dictionary [T, E] and targets [M, E] of the same E");
    const int64_t t = dictionary.size(0), m = targets.size(0), e = dictionary.size(1);
    if (nonzero < 1 || nonzero > std::min(t, e))
        throw InputError("--components " + std::to_string(nonzero), "must be between 1 and min(texts, embedding dimensions)");
    // Atom t (a zero row) stands for "none": a row whose residual is gone picks it from then on
    // (sklearn's OMP stops there), with coefficient 0.
    const at::Tensor d = at::cat({dictionary.to(at::kDouble), at::zeros({1, e}, at::kDouble)}).contiguous();
    const at::Tensor y = targets.to(at::kDouble).contiguous();
    SparseCodes out;
    out.indices = at::full({m, nonzero}, -1, at::kLong);
    out.values = at::zeros({m, nonzero}, at::kDouble);
    const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(m, (int64_t(64) << 20) / std::max<int64_t>(1, t * 8)));
    for (int64_t r0 = 0; r0 < m; r0 += chunk) {
        const int64_t c = std::min(chunk, m - r0);
        const at::Tensor yc = y.narrow(0, r0, c);
        at::Tensor residual = yc.clone();
        at::Tensor picked = at::empty({c, 0}, at::kLong);
        at::Tensor coef = at::zeros({c, 0}, at::kDouble);
        for (int step = 0; step < nonzero; ++step) {
            at::Tensor corr = at::matmul(residual, d.narrow(0, 0, t).t()).abs();  // [c, T]
            if (step > 0) corr.scatter_(1, picked.clamp_max(t - 1), -1.0);       // (a "none" pick masks nothing new)
            const auto [best, atom] = corr.max(1);
            const at::Tensor none = best.pow(2) < std::numeric_limits<float>::min();
            picked = at::cat({picked, at::where(none, at::full_like(atom, t), atom).unsqueeze(1)}, 1);
            const at::Tensor atoms = d.index_select(0, picked.flatten()).view({c, step + 1, e});  // [c, s, E]
            const at::Tensor isNone = (picked == t).to(at::kDouble);                            // [c, s]
            const at::Tensor gram = at::matmul(atoms, atoms.transpose(1, 2)) + at::diag_embed(isNone);
            const at::Tensor rhs = at::matmul(atoms, yc.unsqueeze(2));  // [c, s, 1]
            coef = at::linalg_solve(gram, rhs).squeeze(2);               // least squares on the atoms picked so far
            residual = yc - at::matmul(coef.unsqueeze(1), atoms).squeeze(1);
        }
        const at::Tensor none = picked == t;
        out.indices.narrow(0, r0, c).copy_(picked.masked_fill(none, -1));
        out.values.narrow(0, r0, c).copy_(coef.masked_fill(none, 0));
    }
    return out;
}

std::vector<NeuronText> topTexts(const SparseCodes& codes, int64_t row, const std::vector<std::string>& texts, int count) {
    std::vector<NeuronText> out;
    const at::Tensor idx = codes.indices.select(0, row), val = codes.values.select(0, row);
    for (int64_t j = 0; j < idx.size(0); ++j) {
        const int64_t i = idx[j].item<int64_t>();
        if (i < 0) continue;
        if (i >= static_cast<int64_t>(texts.size())) throw InputError("texts", "fewer texts than the dictionary's atoms");
        out.push_back({i, val[j].item<double>(), texts[static_cast<std::size_t>(i)]});
    }
    std::stable_sort(out.begin(), out.end(), [](const NeuronText& a, const NeuronText& b) { return std::abs(a.coefficient) > std::abs(b.coefficient); });
    if (static_cast<int>(out.size()) > count) out.resize(static_cast<std::size_t>(count));
    return out;
}

at::Tensor neuronTotal(const at::Tensor& output, NeuronConvention convention, double coefficient) {
    if (convention == NeuronConvention::Exact) return output;
    return coefficient * output / output.norm(2, 1, true);
}

NeuronPropertyScorer::NeuronPropertyScorer(const at::Tensor& descriptions, int64_t neurons)
    : m_basis(propertyBasis(descriptions.to(at::kFloat))) {
    const int64_t r = m_basis.size(0);
    m_s = at::zeros({neurons, r}, at::kDouble);
    m_ss = at::zeros({neurons, r}, at::kDouble);
    m_st = at::zeros({neurons, r}, at::kDouble);
    m_t = at::zeros({r}, at::kDouble);
    m_tt = at::zeros({r}, at::kDouble);
}

void NeuronPropertyScorer::add(const at::Tensor& effects, const at::Tensor& total) {
    if (effects.dim() != 3 || total.dim() != 2 || total.size(0) != effects.size(0) ||
        total.size(1) != effects.size(2) || effects.size(1) != m_s.size(0) || effects.size(2) != m_basis.size(1))
        throw InputError("effects",
                         "need [images, neurons, E] and a total [images, E] of the same images, neurons and E");
    const at::Tensor s = at::matmul(effects.to(at::kFloat), m_basis.t()).to(at::kDouble);  // [B, M, r]
    const at::Tensor t = at::matmul(total.to(at::kFloat), m_basis.t()).to(at::kDouble);    // [B, r]
    m_s += s.sum(0);
    m_ss += (s * s).sum(0);
    m_st += (s * t.unsqueeze(1)).sum(0);
    m_t += t.sum(0);
    m_tt += (t * t).sum(0);
    m_images += effects.size(0);
}

std::vector<std::pair<int64_t, double>> NeuronPropertyScorer::ranked() const {
    if (m_images < 1) throw InputError("neuron property scores", "no images were added");
    const double n = static_cast<double>(m_images);
    const at::Tensor covariance = m_st - m_s * (m_t / n).unsqueeze(0);  // [M, r]
    const at::Tensor varS = (m_ss - m_s * m_s / n).clamp_min(0), varT = (m_tt - m_t * m_t / n).clamp_min(0);
    const at::Tensor denom = (varS.sqrt() * varT.sqrt().unsqueeze(0)).clamp_min(1e-20);  // propertyScore's
    const at::Tensor score = (covariance / denom).mean(1);
    std::vector<std::pair<int64_t, double>> out;
    const double* v = score.contiguous().data_ptr<double>();
    for (int64_t i = 0; i < score.size(0); ++i) out.emplace_back(i, v[i]);
    std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    return out;
}

NeuronSpanStatistics::NeuronSpanStatistics(const at::Tensor& basis, int64_t neurons)
    : m_basis(basis.to(at::kFloat).contiguous()) {
    if (basis.dim() != 2 || basis.size(0) < 1)
        throw InputError("neuron statistics", "need a basis [R, E] of at least one row");
    const int64_t r = m_basis.size(0);
    m_s = at::zeros({neurons, r}, at::kDouble);
    m_ss = at::zeros({neurons, r, r}, at::kDouble);
    m_st = at::zeros({neurons, r, r}, at::kDouble);
    m_t = at::zeros({r}, at::kDouble);
    m_tt = at::zeros({r, r}, at::kDouble);
}

at::Tensor NeuronSpanStatistics::spanBasis(const at::Tensor& descriptions, int64_t maxRank) {
    if (descriptions.dim() != 2 || descriptions.size(0) < 1) throw InputError("property texts", "no descriptions");
    const at::Tensor d = descriptions.to(at::kDouble);
    const int64_t cap = std::min(std::max<int64_t>(maxRank, 1), d.size(1));
    std::vector<at::Tensor> rows;
    for (int64_t i = 0; i < d.size(0) && static_cast<int64_t>(rows.size()) < cap; ++i) {
        at::Tensor v = d[i].clone();
        const double size = v.norm().item<double>();
        for (int pass = 0; pass < 2 && !rows.empty(); ++pass) {  // twice: Gram-Schmidt's lost orthogonality
            const at::Tensor u = at::stack(rows);
            v -= at::matmul(u.t(), at::matmul(u, v));
        }
        const double left = v.norm().item<double>();
        if (left > 1e-6 * std::max(size, 1e-30)) rows.push_back(v / left);
    }
    if (rows.empty()) throw InputError("property texts", "the descriptions are all zero");
    return at::stack(rows).to(at::kFloat);
}

int64_t NeuronSpanStatistics::rankForBudget(int64_t neurons, int64_t bytes) {
    int64_t r = 1;
    const auto size = [&](int64_t k) { return 8 * (neurons * k + 2 * neurons * k * k + k + k * k); };
    while (size(r + 1) <= bytes) ++r;
    return r;
}

int64_t NeuronSpanStatistics::bytes() const {
    return 8 * (m_s.numel() + m_ss.numel() + m_st.numel() + m_t.numel() + m_tt.numel());
}

void NeuronSpanStatistics::add(const at::Tensor& effects, const at::Tensor& total) {
    if (effects.dim() != 3 || total.dim() != 2 || total.size(0) != effects.size(0) ||
        total.size(1) != effects.size(2) || effects.size(1) != m_s.size(0) || effects.size(2) != m_basis.size(1))
        throw InputError("effects",
                         "need [images, neurons, E] and a total [images, E] of the same images, neurons and E");
    const at::Tensor s = at::matmul(effects.to(at::kFloat), m_basis.t()).to(at::kDouble);  // [B, M, R]
    const at::Tensor t = at::matmul(total.to(at::kFloat), m_basis.t()).to(at::kDouble);    // [B, R]
    const at::Tensor byNeuron = s.permute({1, 2, 0});                                      // [M, R, B]
    m_s += s.sum(0);
    m_ss += at::matmul(byNeuron, byNeuron.transpose(1, 2));
    m_st += at::matmul(byNeuron, t.unsqueeze(0));
    m_t += t.sum(0);
    m_tt += at::matmul(t.t(), t);
    m_images += effects.size(0);
}

std::vector<std::pair<int64_t, double>> NeuronSpanStatistics::ranked(const at::Tensor& descriptions,
                                                                     double tolerance) const {
    if (m_images < 1 || descriptions.dim() != 2 || descriptions.size(1) != m_basis.size(1)) return {};
    const at::Tensor q = propertyBasis(descriptions).to(at::kDouble);  // [r, E]
    const at::Tensor u = m_basis.to(at::kDouble);
    const at::Tensor a = at::matmul(q, u.t());  // [r, R]: each direction's coordinates in U
    if ((q - at::matmul(a, u)).abs().max().item<double>() > tolerance) return {};
    const double n = static_cast<double>(m_images);
    const at::Tensor at_ = a.t();                      // [R, r]
    const auto quadratic = [&](const at::Tensor& m) {  // a_j^T m a_j per j
        return (at::matmul(m, at_) * at_).sum(-2);     // [M, r] or [r]
    };
    const at::Tensor sumS = at::matmul(m_s, at_), sumT = at::matmul(m_t, at_);  // [M, r], [r]
    const at::Tensor covariance = quadratic(m_st) - sumS * (sumT / n).unsqueeze(0);
    const at::Tensor varS = (quadratic(m_ss) - sumS * sumS / n).clamp_min(0);
    const at::Tensor varT = (quadratic(m_tt) - sumT * sumT / n).clamp_min(0);
    const at::Tensor denom = (varS.sqrt() * varT.sqrt().unsqueeze(0)).clamp_min(1e-20);  // propertyScore's
    const at::Tensor score = (covariance / denom).mean(1).contiguous();
    std::vector<std::pair<int64_t, double>> out;
    const double* v = score.data_ptr<double>();
    for (int64_t i = 0; i < score.size(0); ++i) out.emplace_back(i, v[i]);
    std::stable_sort(out.begin(), out.end(), [](const auto& x, const auto& y) { return x.second > y.second; });
    return out;
}

std::vector<std::pair<int64_t, double>> rankNeurons(const at::Tensor& effects, const at::Tensor& total, const at::Tensor& descriptions,
                                                    const JobContext& job) {
    if (effects.dim() != 3 || total.dim() != 2 || total.size(0) != effects.size(0) || total.size(1) != effects.size(2))
        throw InputError("effects", "need [images, neurons, E] and a total [images, E] of the same images");
    const int64_t n = effects.size(0), m = effects.size(1), e = effects.size(2);
    NeuronPropertyScorer scorer(descriptions, m);
    const int64_t slice =
        std::max<int64_t>(1, std::min<int64_t>(n, (int64_t(256) << 20) / std::max<int64_t>(1, m * e * 4)));
    for (int64_t i0 = 0; i0 < n; i0 += slice) {
        if (job.cancelled()) throw JobCancelled();
        const int64_t s = std::min(slice, n - i0);
        scorer.add(effects.narrow(0, i0, s), total.narrow(0, i0, s));
        job.report({i0 + s, n, 0, 0, "neuron property scores"});
    }
    return scorer.ranked();
}

at::Tensor neuronDirectionScores(const at::Tensor& effects, const std::vector<int64_t>& neurons, const at::Tensor& direction) {
    if (effects.dim() != 3 || direction.numel() != effects.size(2)) throw InputError("effects", "need [images, neurons, E] and a direction [E]");
    at::Tensor scores = at::zeros({effects.size(0)}, at::kDouble);
    const at::Tensor d = direction.to(at::kFloat).flatten();
    for (int64_t n : neurons) {
        if (n < 0 || n >= effects.size(1))
            throw InputError("--neurons", "neuron " + std::to_string(n) + " is not one of the layer's " + std::to_string(effects.size(1)));
        scores += at::matmul(effects.select(1, n).to(at::kFloat), d).to(at::kDouble);
    }
    return scores;
}

NeuronRetrievalScores neuronRetrievalScores(const at::Tensor& effects, const at::Tensor& output,
                                            const std::vector<int64_t>& neurons, const at::Tensor& text) {
    if (output.dim() != 2 || output.size(0) != effects.size(0) || output.size(1) != text.numel())
        throw InputError("output", "needs [images, E] of the effects' images and the text's E");
    const at::Tensor o = output.to(at::kFloat);
    return {neuronDirectionScores(effects, neurons, text),
            at::matmul(o / o.norm(2, 1, true), text.to(at::kFloat).flatten()).to(at::kDouble)};
}

std::vector<std::pair<int64_t, double>> topScores(const at::Tensor& scores, int64_t k) {
    const int64_t n = std::min<int64_t>(std::max<int64_t>(k, 0), scores.numel());
    const auto [values, rows] = scores.flatten().topk(n);
    std::vector<std::pair<int64_t, double>> out;
    for (int64_t i = 0; i < n; ++i) out.emplace_back(rows[i].item<int64_t>(), values[i].item<double>());
    return out;
}

void forEachSecondOrderBatch(const SecondOrderLens& lens, int64_t count, const NeuronPixelBatches& pixels, int batch,
                             const JobContext& job, const std::string& stage,
                             const std::function<void(int64_t start, const SecondOrderEffects&)>& add) {
    if (batch < 1) throw InputError("--batch", "must be at least 1");
    at::NoGradGuard noGrad;
    for (int64_t start = 0; start < count; start += batch) {
        if (job.cancelled()) throw JobCancelled();
        const int64_t n = std::min<int64_t>(batch, count - start);
        add(start, lens.compute(pixels(start, n)));
        job.report({start + n, count, 0, 0, stage});
    }
}

NeuronAblationMeter::NeuronAblationMeter(const NeuronDirections& train, const at::Tensor& classifier, double coefficient,
                                         NeuronConvention convention)
    : m_mean(train.mean.to(at::kFloat)), m_threshold(train.topNorms.select(1, 0).to(at::kFloat)), m_directions(train.directions.to(at::kFloat)),
      m_classifier(classifier.to(at::kFloat)), m_coefficient(coefficient), m_convention(convention), m_correct(6, 0) {}

at::Tensor NeuronAblationMeter::representations(const at::Tensor& effects, const at::Tensor& output) const {
    if (effects.dim() != 3 || effects.size(1) != m_mean.size(0) || effects.size(2) != m_mean.size(1))
        throw InputError("effects", "do not match the training neurons' statistics (neurons or embedding size)");
    if (output.dim() != 2 || output.size(0) != effects.size(0) || output.size(1) != effects.size(2))
        throw InputError("output", "needs [images, E] of the effects' images");
    const at::Tensor phi = effects.to(at::kFloat);
    const at::Tensor rep = neuronTotal(output.to(at::kFloat), m_convention, m_coefficient);  // [B, E]
    const at::Tensor centred = phi - m_mean.unsqueeze(0);                                     // [B, M, E]
    const at::Tensor withoutAll = rep - phi.sum(1) + m_mean.sum(0).unsqueeze(0);
    const at::Tensor significant = (centred.norm(2, 2) > m_threshold.unsqueeze(0)).unsqueeze(2).to(at::kFloat);  // [B, M, 1]
    const at::Tensor sigSum = (centred * significant).sum(1), insigSum = (centred * (1 - significant)).sum(1);
    const at::Tensor projected = ((centred * m_directions.unsqueeze(0)).sum(2, true) * m_directions.unsqueeze(0)).sum(1);
    return at::stack({rep, withoutAll, withoutAll + insigSum, withoutAll + sigSum, withoutAll + projected, rep - phi.sum(1)}, 1);
}

at::Tensor NeuronAblationMeter::correct(const at::Tensor& effects, const at::Tensor& output, const at::Tensor& labels) const {
    const at::Tensor logits = at::matmul(representations(effects, output), m_classifier.t());  // [B, 6, C]
    return logits.argmax(2) == labels.to(at::kLong).flatten().unsqueeze(1);                     // [B, 6]
}

void NeuronAblationMeter::add(const at::Tensor& effects, const at::Tensor& output, const at::Tensor& labels) {
    const at::Tensor c = correct(effects, output, labels).sum(0);
    for (int i = 0; i < 6; ++i) m_correct[static_cast<std::size_t>(i)] += c[i].item<int64_t>();
    m_images += labels.numel();
}

const std::vector<std::string>& NeuronAblationMeter::rowNames() {
    static const std::vector<std::string> names{"baseline",
                                                "all neurons mean-ablated",
                                                "significant neurons mean-ablated",
                                                "insignificant neurons mean-ablated",
                                                "neurons projected on their principal direction",
                                                "all neurons zero-ablated"};
    return names;
}

std::vector<std::pair<std::string, double>> NeuronAblationMeter::top1() const {
    std::vector<std::pair<std::string, double>> out;
    for (int i = 0; i < 6; ++i)
        out.emplace_back(rowNames()[static_cast<std::size_t>(i)],
                         m_images > 0 ? 100.0 * static_cast<double>(m_correct[static_cast<std::size_t>(i)]) / static_cast<double>(m_images) : 0.0);
    return out;
}

std::vector<LayerNeuron> neuronsForText(const std::vector<int>& layers, const std::vector<at::Tensor>& directions, const at::Tensor& text,
                                        int count) {
    if (layers.empty() || layers.size() != directions.size()) throw InputError("neuron map", "needs each layer's principal directions");
    std::vector<at::Tensor> all;
    for (const at::Tensor& d : directions) {
        if (d.dim() != 2 || d.size(1) != text.numel()) throw InputError("neuron map", "directions and the text differ in dimension");
        all.push_back(d.to(at::kFloat));
    }
    const at::Tensor scores = at::matmul(at::cat(all), text.to(at::kFloat).flatten()).abs();  // [sum M]
    if (count < 1 || count > scores.size(0))
        throw InputError("--top-neurons " + std::to_string(count), "must be between 1 and the " + std::to_string(scores.size(0)) + " neurons");
    const at::Tensor picked = std::get<1>(scores.topk(count));
    std::vector<LayerNeuron> out;
    for (int64_t i = 0; i < count; ++i) {
        int64_t index = picked[i].item<int64_t>();
        std::size_t l = 0;
        while (index >= directions[l].size(0)) index -= directions[l++].size(0);
        out.push_back({layers[l], index});
    }
    return out;
}

std::vector<std::vector<LayerNeuron>> neuronsPerClass(const std::vector<int>& layers, const std::vector<at::Tensor>& directions,
                                                      const at::Tensor& table, int count) {
    if (table.dim() != 2) throw InputError("neuron map", "needs a class table [classes, E]");
    std::vector<std::vector<LayerNeuron>> out;
    for (int64_t c = 0; c < table.size(0); ++c) out.push_back(neuronsForText(layers, directions, table[c], count));
    return out;
}

at::Tensor neuronActivationMaps(const Model& model, const at::Tensor& pixels, const std::vector<std::vector<LayerNeuron>>& sets) {
    std::vector<int> layers;
    for (const std::vector<LayerNeuron>& set : sets) {
        if (set.empty()) throw InputError("neuron map", "no neurons chosen");
        for (const LayerNeuron& n : set)
            if (std::find(layers.begin(), layers.end(), n.layer) == layers.end()) layers.push_back(n.layer);
    }
    at::NoGradGuard noGrad;
    const std::vector<at::Tensor> acts = mlpActivations(model, pixels, layers);  // [B, N, M] each
    std::vector<at::Tensor> maps;
    for (const std::vector<LayerNeuron>& set : sets) {
        at::Tensor sum;
        for (std::size_t i = 0; i < layers.size(); ++i) {
            std::vector<int64_t> idx;
            for (const LayerNeuron& n : set)
                if (n.layer == layers[i]) {
                    if (n.neuron < 0 || n.neuron >= acts[i].size(2))
                        throw InputError("neuron map", "layer " + std::to_string(n.layer) + " has no neuron " + std::to_string(n.neuron));
                    idx.push_back(n.neuron);
                }
            if (idx.empty()) continue;
            const at::Tensor part = acts[i].index_select(2, at::tensor(idx, at::kLong).to(acts[i].device())).sum(2);  // [B, N]
            sum = sum.defined() ? sum + part : part;
        }
        maps.push_back(sum / static_cast<double>(set.size()));
    }
    const int gh = static_cast<int>(pixels.size(2)) / model.vision.patchSize, gw = static_cast<int>(pixels.size(3)) / model.vision.patchSize;
    const int64_t prefix = model.vision.prefixTokens();  // (test-time registers follow the patches)
    const at::Tensor all = at::stack(maps, 1);            // [B, sets, N]
    return all.narrow(2, prefix, int64_t(gh) * gw).reshape({all.size(0), all.size(1), gh, gw}).cpu();
}

at::Tensor neuronActivationMap(const Model& model, const at::Tensor& pixels, const std::vector<LayerNeuron>& neurons) {
    return neuronActivationMaps(model, pixels, {neurons}).select(1, 0);
}

}  // namespace vitscope
