#include "analysis/retrieval.h"

#include "error.h"

#include <immintrin.h>

#include <algorithm>
#include <thread>

namespace vitscope {

namespace {

constexpr int64_t kChunk = 16384;

// out[r] += <row r of fp16 rows (stride in elements), v> for r < rows. The cache stays fp16 in
// its memory map; converting on the fly reads half the bytes of a float copy and never allocates.
__attribute__((target("avx2,fma,f16c"))) void dotRowsF16Avx2(const uint16_t* base, int64_t rows, int64_t stride, const float* v,
                                                             int64_t d, float* out) {
    for (int64_t r = 0; r < rows; ++r) {
        const uint16_t* x = base + r * stride;
        __m256 acc = _mm256_setzero_ps();
        int64_t k = 0;
        for (; k + 8 <= d; k += 8)
            acc = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + k))), _mm256_loadu_ps(v + k), acc);
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
        s = _mm_hadd_ps(s, s);
        s = _mm_hadd_ps(s, s);
        float total = _mm_cvtss_f32(s);
        for (; k < d; ++k) total += static_cast<float>(c10::Half(x[k], c10::Half::from_bits())) * v[k];
        out[r] += total;
    }
}

void dotRowsF16Scalar(const uint16_t* base, int64_t rows, int64_t stride, const float* v, int64_t d, float* out) {
    for (int64_t r = 0; r < rows; ++r) {
        const uint16_t* x = base + r * stride;
        float total = 0;
        for (int64_t k = 0; k < d; ++k) total += static_cast<float>(c10::Half(x[k], c10::Half::from_bits())) * v[k];
        out[r] += total;
    }
}

}  // namespace

void accumulateDots(const at::Tensor& stored, const at::Tensor& v, at::Tensor& scores) {
    static const bool fast = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    if (stored.scalar_type() != at::kHalf || stored.stride(1) != 1) {
        scores += at::matmul(stored.to(at::kFloat), v);
        return;
    }
    const auto* base = reinterpret_cast<const uint16_t*>(stored.data_ptr<at::Half>());
    const int64_t n = stored.size(0), stride = stored.stride(0), d = stored.size(1);
    const float* vp = v.data_ptr<float>();
    float* out = scores.data_ptr<float>();
    auto run = [&](int64_t begin, int64_t end) {
        (fast ? dotRowsF16Avx2 : dotRowsF16Scalar)(base + begin * stride, end - begin, stride, vp, d, out + begin);
    };
    const int threads = static_cast<int>(std::clamp<int64_t>(n / 8192, 1, std::min<unsigned>(4, std::max(1u, std::thread::hardware_concurrency()))));
    if (threads == 1) {
        run(0, n);
        return;
    }
    std::vector<std::thread> pool;
    const int64_t per = (n + threads - 1) / threads;
    for (int t = 0; t < threads; ++t) {
        const int64_t begin = t * per, end = std::min(n, begin + per);
        if (begin < end) pool.emplace_back(run, begin, end);
    }
    for (std::thread& th : pool) th.join();
}

namespace {

// The summed terms of `components` for rows [start, start + n) in the model's space: [n, D] float.
at::Tensor summedTerms(const CacheView& view, const std::vector<Component>& components, int64_t start, int64_t n) {
    at::Tensor sum;
    for (const Component& c : components) {
        const at::Tensor t = view.storedTerms(c, start, n).to(at::kFloat);
        sum = sum.defined() ? sum.add_(t) : t.clone();
    }
    return sum;
}

std::vector<RetrievalHit> topRows(const CacheView& view, const std::function<at::Tensor(int64_t, int64_t)>& scoreChunk, int top) {
    if (top < 1) throw InputError("--top", "must be at least 1");
    at::NoGradGuard noGrad;
    std::vector<at::Tensor> scores;
    for (int64_t start = 0; start < view.size(); start += kChunk) scores.push_back(scoreChunk(start, std::min(kChunk, view.size() - start)));
    const at::Tensor all = at::cat(scores);
    const int64_t k = std::min<int64_t>(top, all.size(0));
    const auto best = at::topk(all, k);
    const at::Tensor values = std::get<0>(best), index = std::get<1>(best);
    std::vector<RetrievalHit> out;
    for (int64_t i = 0; i < k; ++i) {
        const int64_t row = index[i].item<int64_t>();
        out.push_back({row, view.cache().paths()[static_cast<std::size_t>(row)], values[i].item<double>()});
    }
    return out;
}

void checkQuery(const CacheView& view, const at::Tensor& q) {
    if (q.dim() != 1 || q.size(0) != view.embedDim())
        throw InputError("query", "expected a " + std::to_string(view.embedDim()) + "-dimensional vector, got " + std::to_string(q.numel()) +
                                      " values (another model, or a missing --aligner?)");
}

}  // namespace

at::Tensor textScores(const CacheView& view, const at::Tensor& text, const std::vector<Component>& components) {
    checkQuery(view, text);
    at::NoGradGuard noGrad;
    const at::Tensor t = text.to(at::kFloat);
    if (!components.empty()) {
        // <sum_c aligned term_c, t> = sum_c <stored term_c, W_c t>: one pass over the fp16 rows.
        at::Tensor scores = at::zeros({view.size()}, at::kFloat);
        for (const Component& c : components) accumulateDots(view.storedTerms(c), view.pullBack(c, t), scores);
        return scores;
    }
    std::vector<at::Tensor> parts;
    for (int64_t start = 0; start < view.size(); start += kChunk) {
        const at::Tensor out = view.output(start, std::min(kChunk, view.size() - start));
        parts.push_back(at::matmul(out / out.norm(2, 1, true).clamp_min(1e-12), t));
    }
    return parts.empty() ? at::zeros({0}, at::kFloat) : at::cat(parts);
}

std::vector<RetrievalHit> retrieveByText(const CacheView& view, const at::Tensor& text, const std::vector<Component>& components,
                                         int top) {
    const at::Tensor scores = textScores(view, text, components);
    return topRows(view, [&](int64_t start, int64_t n) { return scores.narrow(0, start, n); }, top);
}

std::vector<RetrievalHit> retrieveByImage(const CacheView& view, const at::Tensor& query, const std::vector<Component>& components,
                                          int top) {
    if (components.empty()) {
        checkQuery(view, query);
    } else if (query.dim() != 1 || query.size(0) != view.cache().embedDim()) {
        throw InputError("query", "expected the model's " + std::to_string(view.cache().embedDim()) + "-dimensional summed terms, got " +
                                      std::to_string(query.numel()) + " values");
    }
    const at::Tensor q = query.to(at::kFloat) / query.norm().clamp_min(1e-12);
    return topRows(view, [&](int64_t start, int64_t n) {
        const at::Tensor x = components.empty() ? view.output(start, n) : summedTerms(view, components, start, n);
        return at::matmul(x / x.norm(2, 1, true).clamp_min(1e-12), q);
    }, top);
}

at::Tensor cachedQuery(const CacheView& view, int64_t row, const std::vector<Component>& components) {
    if (row < 0 || row >= view.size()) throw InputError("query row", std::to_string(row) + " is outside the cache");
    return components.empty() ? view.output(row, 1)[0] : summedTerms(view, components, row, 1)[0];
}

at::Tensor decompositionQuery(const Decomposition& dec, const std::vector<Component>& components, const Aligner* aligner) {
    at::Tensor q;
    if (components.empty()) {
        if (aligner && aligner->perComponent()) {
            std::vector<std::string> names;
            const at::Tensor x = stackedTerms(dec, &names).narrow(0, 0, 1).to(at::kCPU, at::kFloat);
            if (names != aligner->components) throw InputError("aligner", "was made for another model's components");
            return applyToTerms(*aligner, x)[0];
        }
        q = dec.output[0].to(at::kCPU, at::kFloat);
        return aligner ? aligner->apply(q) : q;
    }
    for (const Component& c : components) {
        at::Tensor t;
        switch (c.kind) {
        case Component::Kind::Head: t = dec.heads[0][c.layer][c.head].to(at::kCPU, at::kFloat); break;
        case Component::Kind::Mlp: t = dec.mlps[0][c.layer].to(at::kCPU, at::kFloat); break;
        case Component::Kind::Embed: t = dec.embed[0].to(at::kCPU, at::kFloat); break;
        case Component::Kind::Conv:
            if (!dec.convs.defined()) throw InputError(c.name(), "the model has no MBConv blocks");
            t = dec.convs[0][c.layer].to(at::kCPU, at::kFloat);
            break;
        case Component::Kind::PoolHead:
        case Component::Kind::PoolMlp: {
            if (!dec.pooled()) throw InputError(c.name(), "the model has no attention-pooling head");
            t = (c.kind == Component::Kind::PoolMlp ? dec.poolMlp[0] : (dec.poolHeads.dim() == 4 ? dec.poolHeads[0][c.head].sum(0) : dec.poolHeads[0][c.head]))
                    .to(at::kCPU, at::kFloat);
            break;
        }
        }
        q = q.defined() ? q + t : t;  // the model's space (retrieveByImage compares components there)
    }
    return q;
}

}  // namespace vitscope
