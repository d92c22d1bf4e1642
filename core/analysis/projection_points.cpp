#include "analysis/projection_points.h"

#include "analysis/retrieval.h"
#include "error.h"
#include "io/tensor_io.h"

namespace vitscope {

namespace {

constexpr int64_t kChunk = 16384;

PointMatrix toPoints(const at::Tensor& t) {
    const at::Tensor c = t.to(at::kFloat).contiguous();
    PointMatrix m(c.size(0), c.size(1));
    std::copy(c.data_ptr<float>(), c.data_ptr<float>() + c.numel(), m.data());
    return m;
}

std::vector<Component> orHeads(const CacheView& view, const std::vector<Component>& components) {
    if (!components.empty()) return components;
    std::vector<Component> heads = view.heads();
    if (heads.empty()) throw InputError(view.cache().dir(), "caches no heads");
    return heads;
}

void checkTexts(const CacheView& view, const at::Tensor& texts) {
    if (texts.dim() != 2 || texts.size(0) != 4 || texts.size(1) != view.embedDim())
        throw InputError("text axes", "expected 4 texts (A, B for x; C, D for y) of dimension " + std::to_string(view.embedDim()));
}

}  // namespace

PointMatrix imagePoints(const CacheView& view, const std::vector<Component>& components, const JobContext& job) {
    at::NoGradGuard noGrad;
    if (view.size() < 1) throw InputError(view.cache().dir(), "holds no images");
    std::vector<at::Tensor> parts;
    for (int64_t start = 0; start < view.size(); start += kChunk) {
        if (job.cancelled()) throw JobCancelled();
        const int64_t n = std::min(kChunk, view.size() - start);
        at::Tensor sum;
        if (components.empty()) sum = view.output(start, n);
        for (const Component& c : components) {
            const at::Tensor t = view.terms(c, start, n);
            sum = sum.defined() ? sum.add_(t) : t.clone();
        }
        parts.push_back(sum);
        job.report({start + n, view.size(), 0, 0, "reading points"});
    }
    return toPoints(at::cat(parts));
}

PointMatrix headPoints(const CacheView& view, const std::vector<Component>& components, const JobContext& job) {
    at::NoGradGuard noGrad;
    const std::vector<Component> heads = orHeads(view, components);
    if (view.size() < 1) throw InputError(view.cache().dir(), "holds no images");
    at::Tensor out = at::zeros({static_cast<int64_t>(heads.size()), view.embedDim()}, at::kDouble);
    for (std::size_t h = 0; h < heads.size(); ++h) {
        if (job.cancelled()) throw JobCancelled();
        for (int64_t start = 0; start < view.size(); start += kChunk)
            out[static_cast<int64_t>(h)] += view.terms(heads[h], start, std::min(kChunk, view.size() - start)).to(at::kDouble).sum(0);
        job.report({static_cast<int64_t>(h) + 1, static_cast<int64_t>(heads.size()), 0, 0, "mean head directions"});
    }
    return toPoints(out / out.norm(2, 1, true).clamp_min(1e-300));
}

PointMatrix headDirectionPoints(const CacheView& view, const std::vector<Component>& components, int perHead, const JobContext& job) {
    at::NoGradGuard noGrad;
    const std::vector<Component> heads = orHeads(view, components);
    if (view.size() < 1) throw InputError(view.cache().dir(), "holds no images");
    const int64_t e = view.embedDim();
    if (perHead < 1 || perHead > e) throw InputError("--directions", "must be in 1.." + std::to_string(e) + ", got " + std::to_string(perHead));
    at::Tensor out = at::empty({static_cast<int64_t>(heads.size()) * perHead, e}, at::kDouble);
    for (std::size_t h = 0; h < heads.size(); ++h) {
        if (job.cancelled()) throw JobCancelled();
        at::Tensor gram = at::zeros({e, e}, at::kDouble), sum = at::zeros({e}, at::kDouble);
        for (int64_t start = 0; start < view.size(); start += kChunk) {
            const at::Tensor t = view.terms(heads[h], start, std::min(kChunk, view.size() - start)).to(at::kDouble);
            gram.add_(at::matmul(t.t(), t));
            sum.add_(t.sum(0));
        }
        // X^T X's eigenvectors are X's right singular vectors; eigh sorts ascending.
        const at::Tensor v = std::get<1>(at::linalg_eigh(gram)).flip({1}).narrow(1, 0, perHead).t();  // [K, E]
        const at::Tensor sign = at::where(at::matmul(v, sum) < 0, -1.0, 1.0).unsqueeze(1);
        out.narrow(0, static_cast<int64_t>(h) * perHead, perHead).copy_(v * sign);
        job.report({static_cast<int64_t>(h) + 1, static_cast<int64_t>(heads.size()), 0, 0, "principal head directions"});
    }
    return toPoints(out);
}

Layout directionTextAxesLayout(const PointMatrix& directions, const at::Tensor& texts) {
    if (texts.dim() != 2 || texts.size(0) != 4 || texts.size(1) != directions.cols())
        throw InputError("text axes", "expected 4 texts (A, B for x; C, D for y) of dimension " + std::to_string(directions.cols()));
    const at::Tensor d = at::from_blob(const_cast<float*>(directions.data()), {directions.rows(), directions.cols()}, at::kFloat).to(at::kDouble);
    const at::Tensor t = texts.to(at::kDouble);
    return toPoints(at::stack({at::matmul(d, t[0] - t[1]), at::matmul(d, t[2] - t[3])}, 1));
}

Layout textAxesLayout(const CacheView& view, const at::Tensor& texts, const std::vector<Component>& components) {
    checkTexts(view, texts);
    const at::Tensor x = textScores(view, texts[0], components) - textScores(view, texts[1], components);
    const at::Tensor y = textScores(view, texts[2], components) - textScores(view, texts[3], components);
    return toPoints(at::stack({x, y}, 1));
}

Layout headTextAxesLayout(const CacheView& view, const at::Tensor& texts, const std::vector<Component>& components) {
    checkTexts(view, texts);
    const std::vector<Component> heads = orHeads(view, components);
    at::Tensor out = at::zeros({static_cast<int64_t>(heads.size()), 2}, at::kDouble);
    for (std::size_t h = 0; h < heads.size(); ++h) {
        for (int axis = 0; axis < 2; ++axis) {
            const at::Tensor d = textScores(view, texts[2 * axis], {heads[h]}) - textScores(view, texts[2 * axis + 1], {heads[h]});
            out[static_cast<int64_t>(h)][axis] = d.to(at::kDouble).mean();
        }
    }
    return toPoints(out);
}

std::vector<ComponentScore> selectionSeparation(const CacheView& view, const std::vector<int64_t>& rows, const std::vector<Component>& components,
                                                const JobContext& job) {
    at::NoGradGuard noGrad;
    const int64_t n = view.size();
    at::Tensor inGroup = at::zeros({n}, at::kBool);
    for (int64_t r : rows) {
        if (r < 0 || r >= n) throw InputError("selection", "row " + std::to_string(r) + " is not an image of the cache (" + std::to_string(n) + " images)");
        inGroup[r] = true;
    }
    const int64_t picked = inGroup.sum().item<int64_t>();
    if (picked == 0 || picked == n) throw InputError("selection", "pick some of the images, not none or all, to compare them with the rest");
    std::vector<Component> set = components;
    if (set.empty()) {
        set = view.heads();
        for (const Component& c : view.poolHeads()) set.push_back(c);
        for (const Component& c : view.allComponents())
            if (c.kind == Component::Kind::Mlp || c.kind == Component::Kind::PoolMlp || c.kind == Component::Kind::Conv) set.push_back(c);
    }
    const at::Tensor weight = inGroup.to(at::kDouble).unsqueeze(1);
    std::vector<ComponentScore> out;
    for (std::size_t i = 0; i < set.size(); ++i) {
        if (job.cancelled()) throw JobCancelled();
        const at::Tensor t = view.terms(set[i]).to(at::kDouble);  // [N, E]
        const at::Tensor sumIn = (t * weight).sum(0), sumAll = t.sum(0);
        const at::Tensor meanIn = sumIn / double(picked), meanOut = (sumAll - sumIn) / double(n - picked);
        const double spread = std::sqrt((t - sumAll / double(n)).pow(2).sum(1).mean().item<double>());
        out.push_back({set[i], spread > 0 ? (meanIn - meanOut).norm().item<double>() / spread : 0.0});
        job.report({static_cast<int64_t>(i) + 1, static_cast<int64_t>(set.size()), 0, 0, "separation of the picked images"});
    }
    return out;
}

void writeLayoutNpy(const std::string& path, const Layout& layout) {
    at::Tensor t = at::empty({layout.rows(), 2}, at::kFloat);
    std::copy(layout.data(), layout.data() + layout.size(), t.data_ptr<float>());
    writeNpyTensor(path, t);
}

}  // namespace vitscope
