#include "analysis/precision_agreement.h"

#include "analysis/heatmap.h"
#include "analysis/property.h"
#include "analysis/text_embed.h"
#include "analysis/textspan.h"
#include "error.h"
#include "model/forward.h"
#include "shapes/world.h"
#include "shapes/zero_shot.h"

#include <algorithm>
#include <cstdio>
#include <set>

namespace vitscope {

namespace {

using shapes::Scene;

constexpr uint64_t kSeed = shapes::kEvalSeed + 32;  // held out (never a training seed)

// Every component's terms over the scenes, each precision's own sum identity and output.
struct Run {
    at::Tensor terms;   // [N, C, E]
    at::Tensor output;  // [N, E]
    std::vector<std::string> names;
    double identity = 0;
};

at::Tensor pixelsFor(const Model& m, const std::vector<Scene>& scenes, std::size_t begin, std::size_t count) {
    const std::vector<Scene> part(scenes.begin() + static_cast<std::ptrdiff_t>(begin),
                                  scenes.begin() + static_cast<std::ptrdiff_t>(begin + count));
    at::Tensor px = shapes::scenesToPixels(part, m.preprocess);
    const int64_t s = m.preprocess.imageSize;
    if (px.size(2) != s) px = at::upsample_bilinear2d(px, {s, s}, false);
    return px.to(m.vision.device());
}

Run decomposeAll(const Model& m, const std::vector<Scene>& scenes, int batch) {
    Run r;
    std::vector<at::Tensor> terms, outputs;
    for (std::size_t i = 0; i < scenes.size(); i += static_cast<std::size_t>(batch)) {
        const std::size_t n = std::min(scenes.size() - i, static_cast<std::size_t>(batch));
        const Decomposition dec = decomposeImages(m, pixelsFor(m, scenes, i, n));
        r.names.clear();
        terms.push_back(termsByComponent(dec, &r.names).to(at::kCPU, at::kFloat));
        outputs.push_back(dec.output.to(at::kCPU, at::kFloat));
        r.identity = std::max(r.identity, dec.maxAbsError / dec.output.abs().max().item<double>());
    }
    r.terms = at::cat(terms);
    r.output = at::cat(outputs);
    return r;
}

at::Tensor unitRows(const at::Tensor& x) {
    return x / x.norm(2, 1, true).clamp_min(1e-12);
}

bool hasTexts(const Model& m) {
    return m.isClip() && !m.tokenizerPath.empty();
}

// The text pool [T, E]: the shapes world's phrases through the fp32 model's text tower, or
// random unit directions for a model without one.
at::Tensor textPool(const Model& m, int randomTexts) {
    if (hasTexts(m)) return unitRows(TextEncoder(m).encode(shapes::textPool()).to(at::kCPU, at::kFloat));
    const at::Generator gen = at::detail::createCPUGenerator(7);
    return unitRows(at::randn({randomTexts, m.vision.embedDim()}, gen, at::TensorOptions()));
}

// Per attribute, its values' prompts [k, E] (CLIP); else six sets of five pool directions.
std::vector<at::Tensor> properties(const Model& m, const at::Tensor& pool) {
    std::vector<at::Tensor> out;
    for (shapes::Attribute a : shapes::kAttributes) {
        if (!hasTexts(m)) {
            out.push_back(pool.narrow(0, 5 * static_cast<int64_t>(out.size()), 5));
            continue;
        }
        std::vector<std::string> prompts;
        for (std::size_t v = 0; v < shapes::attributeValues(a).size(); ++v)
            prompts.push_back(shapes::singleAttributePrompt(a, static_cast<int>(v)));
        out.push_back(unitRows(TextEncoder(m).encode(prompts).to(at::kCPU, at::kFloat)));
    }
    return out;
}

double pearson(const at::Tensor& a, const at::Tensor& b) {
    const at::Tensor x = a.flatten().to(at::kDouble) - a.to(at::kDouble).mean(),
                     y = b.flatten().to(at::kDouble) - b.to(at::kDouble).mean();
    const double den = (x.norm() * y.norm()).item<double>();
    return den > 0 ? (x * y).sum().item<double>() / den : 1.0;
}

double spearman(const at::Tensor& a, const at::Tensor& b) {
    auto ranks = [](const at::Tensor& v) { return v.argsort().argsort().to(at::kDouble); };
    return pearson(ranks(a), ranks(b));
}

}  // namespace

namespace {

// Indices of the heads ("L.H") of the last `layers` layers among the component names.
std::vector<int64_t> lastHeads(const std::vector<std::string>& names, int totalLayers, int layers) {
    std::vector<int64_t> out;
    for (std::size_t c = 0; c < names.size(); ++c) {
        int l = -1, h = -1, used = 0;
        if (std::sscanf(names[c].c_str(), "%d.%d%n", &l, &h, &used) == 2 && used == static_cast<int>(names[c].size()) &&
            l >= totalLayers - layers)
            out.push_back(static_cast<int64_t>(c));
    }
    return out;
}

void compareTextSpan(const Run& f, const Run& r, const at::Tensor& pool, int totalLayers, const AgreementParams& p,
                     AgreementResult& out) {
    TextSpanParams tp;
    tp.perHead = p.perHead;
    const std::vector<int64_t> heads = lastHeads(f.names, totalLayers, p.textspanLayers);
    int first = 0, same = 0;
    for (int64_t c : heads) {
        const HeadTexts a = textSpan(f.terms.select(1, c), pool, tp), b = textSpan(r.terms.select(1, c), pool, tp);
        std::vector<int> la, lb;
        for (const TextSpanPick& k : a.picks) la.push_back(k.text);
        for (const TextSpanPick& k : b.picks) lb.push_back(k.text);
        first += !la.empty() && !lb.empty() && la[0] == lb[0];
        same += la == lb;
    }
    out.textspanHeads = static_cast<int>(heads.size());
    out.firstPick = heads.empty() ? -1 : static_cast<double>(first) / static_cast<double>(heads.size());
    out.sameList = heads.empty() ? -1 : static_cast<double>(same) / static_cast<double>(heads.size());
}

// Every component's property score in both precisions, ranked against each other.
double compareRanking(const Run& f, const Run& r, const std::vector<at::Tensor>& props) {
    double sum = 0;
    for (const at::Tensor& desc : props) {
        const at::Tensor basis = propertyBasis(desc);
        const int64_t c = f.terms.size(1);
        at::Tensor sf = at::empty({c}, at::kDouble), sr = at::empty({c}, at::kDouble);
        for (int64_t i = 0; i < c; ++i) {
            sf[i] = propertyScore(f.terms.select(1, i), f.output, basis);
            sr[i] = propertyScore(r.terms.select(1, i), r.output, basis);
        }
        sum += spearman(sf, sr);
    }
    return sum / static_cast<double>(props.size());
}

double compareRetrieval(const Run& f, const Run& r, const at::Tensor& pool, int queries) {
    const int64_t q = std::min<int64_t>(queries, pool.size(0)), k = std::min<int64_t>(10, f.output.size(0));
    const at::Tensor texts = pool.narrow(0, 0, q).t();
    const at::Tensor tf = std::get<1>(unitRows(f.output).matmul(texts).topk(k, 0)),
                     tr = std::get<1>(unitRows(r.output).matmul(texts).topk(k, 0));
    double overlap = 0;
    for (int64_t j = 0; j < q; ++j) {
        std::set<int64_t> a;
        for (int64_t i = 0; i < k; ++i) a.insert(tf[i][j].item<int64_t>());
        for (int64_t i = 0; i < k; ++i) overlap += a.count(tr[i][j].item<int64_t>()) ? 1.0 : 0.0;
    }
    return overlap / static_cast<double>(q * k);
}

// Whether the map's maximum (at the model's input size) falls on the scene's object.
bool pointsAtObject(const Heatmap& h, const Scene& s) {
    const at::Tensor mask = at::from_blob(s.mask.data, {1, 1, s.mask.rows, s.mask.cols}, at::kByte).to(at::kFloat);
    const at::Tensor big = at::upsample_nearest2d(mask, {h.pixels.size(0), h.pixels.size(1)}).view({-1});
    return big[h.pixels.flatten().argmax().item<int64_t>()].item<float>() > 0;
}

void compareHeatmaps(const Model& fm, const Model& rm, const std::vector<Scene>& scenes, const at::Tensor& shapeTexts,
                     const AgreementParams& p, AgreementResult& out) {
    const int n = std::min<int>(p.heatmapImages, static_cast<int>(scenes.size()));
    double corr = 0, pf = 0, pr = 0;
    for (int i = 0; i < n; ++i) {
        const int shape = scenes[static_cast<std::size_t>(i)].labels.value(shapes::Attribute::Shape);
        const at::Tensor text = hasTexts(fm) ? shapeTexts[shape] : shapeTexts[0];
        const Heatmap a =
            computeHeatmap(fm, pixelsFor(fm, scenes, static_cast<std::size_t>(i), 1), text.to(fm.vision.device()), {});
        const Heatmap b =
            computeHeatmap(rm, pixelsFor(rm, scenes, static_cast<std::size_t>(i), 1), text.to(rm.vision.device()), {});
        corr += pearson(a.patches.cpu(), b.patches.cpu());
        pf += pointsAtObject(a, scenes[static_cast<std::size_t>(i)]) ? 1 : 0;
        pr += pointsAtObject(b, scenes[static_cast<std::size_t>(i)]) ? 1 : 0;
    }
    out.heatmapCorrelation = n > 0 ? corr / n : -1;
    if (hasTexts(fm) && n > 0) {  // the shape's prompt names the object: a meaningful target
        out.pointingFp32 = pf / n;
        out.pointingReduced = pr / n;
    }
}

double zeroShotMean(const Model& m, int images) {
    const auto tok = loadTokenizer(m.tokenizerPath);
    const shapes::ZeroShotResult z = shapes::evaluateZeroShot(m, *tok, images);
    double sum = 0;
    for (double a : z.accuracy) sum += a;
    return sum / static_cast<double>(z.accuracy.size());
}

}  // namespace

void AgreementParams::validate() const {
    if (images < 12 || batch < 1 || heatmapImages < 0 || textspanLayers < 1 || perHead < 1 || retrievalQueries < 1 ||
        zeroShotImages < 0 || randomTexts < 30)
        throw InputError(
            "agreement",
            "needs images >= 12, batch >= 1, textspan layers >= 1, texts per head >= 1, random texts >= 30");
}

AgreementResult measureAgreement(const Model& fp32, const Model& reduced, const AgreementParams& p) {
    p.validate();
    at::NoGradGuard noGrad;
    std::vector<Scene> scenes;
    for (int i = 0; i < p.images; ++i) scenes.push_back(shapes::generateScene(kSeed, static_cast<uint64_t>(i)));
    const Run f = decomposeAll(fp32, scenes, p.batch), r = decomposeAll(reduced, scenes, p.batch);
    AgreementResult out;
    out.precision = precisionName(reduced.precision);
    out.images = p.images;
    out.identityFp32 = f.identity;
    out.identityReduced = r.identity;
    const at::Tensor cos = (unitRows(f.output) * unitRows(r.output)).sum(1);
    out.cosineMean = cos.mean().item<double>();
    out.cosineMin = cos.min().item<double>();
    const at::Tensor pool = textPool(fp32, p.randomTexts);
    compareTextSpan(f, r, pool, fp32.vision.layers(), p, out);
    const std::vector<at::Tensor> props = properties(fp32, pool);
    out.rankCorrelation = compareRanking(f, r, props);
    out.retrievalOverlap = compareRetrieval(f, r, pool, p.retrievalQueries);
    compareHeatmaps(fp32, reduced, scenes, props.front(), p, out);
    if (hasTexts(fp32) && p.zeroShotImages > 0) {
        out.zeroShotFp32 = zeroShotMean(fp32, p.zeroShotImages);
        out.zeroShotReduced = zeroShotMean(reduced, p.zeroShotImages);
    }
    return out;
}

}  // namespace vitscope
