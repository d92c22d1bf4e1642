#include "shapes/plant.h"

#include "analysis/text_embed.h"
#include "error.h"
#include "model/forward.h"
#include "shapes/world.h"
#include "shapes/zero_shot.h"

#include <ATen/ATen.h>

#include <cmath>
#include <sstream>

namespace vitscope::shapes {

namespace {

using at::indexing::Slice;

// Per scene and patch (row-major over the grid), the ground truth the probes are fitted to.
struct FitScenes {
    at::Tensor pixels;      // [S, 3, side, side]
    at::Tensor background;  // [S, P] bool: no pixel of the object or the distractor
    at::Tensor farness;     // [S, P] double: 0 where not background, else min(distance to an object pixel in patches, 4) / 4
    at::Tensor colour;      // [S, P] double: share of the patch covered by an object of the property's colour
};

void addPatchTruth(const Scene& s, int colour, int patch, double* bg, double* far, double* share) {
    const int side = s.image.rows, grid = side / patch;
    cv::Mat object = s.mask.clone(), coloured = cv::Mat::zeros(s.mask.size(), CV_8UC1);
    if (s.labels.value(Attribute::Color) == colour) coloured |= s.mask;
    if (!s.distractorMask.empty()) {
        object |= s.distractorMask;
        if (s.labels.distractor && s.labels.distractorValue(Attribute::Color) == colour) coloured |= s.distractorMask;
    }
    std::vector<cv::Point> points;
    cv::findNonZero(object, points);
    for (int p = 0; p < grid * grid; ++p) {
        const cv::Rect r((p % grid) * patch, (p / grid) * patch, patch, patch);
        const double cy = r.y + (patch - 1) / 2.0, cx = r.x + (patch - 1) / 2.0;
        double nearest = 4.0 * patch;
        for (const cv::Point& q : points) nearest = std::min(nearest, std::hypot(q.y - cy, q.x - cx));
        bg[p] = cv::countNonZero(object(r)) == 0 ? 1 : 0;
        far[p] = bg[p] * std::min(nearest / patch, 4.0) / 4.0;
        share[p] = cv::countNonZero(coloured(r)) / static_cast<double>(patch * patch);
    }
}

FitScenes fitScenes(const Model& model, const PlantParams& p) {
    const int patch = model.vision.patchSize, side = model.vision.imageSize, P = (side / patch) * (side / patch);
    const int colour = valueIndex(Attribute::Color, p.propertyColor);
    WorldParams world;
    world.imageSize = side;
    std::vector<Scene> scenes;
    FitScenes f;
    at::Tensor bg = at::zeros({p.scenes, P}, at::kDouble), far = at::zeros({p.scenes, P}, at::kDouble), share = at::zeros({p.scenes, P}, at::kDouble);
    for (int64_t i = 0; i < p.scenes; ++i) {
        scenes.push_back(generateScene(p.seed, static_cast<uint64_t>(i), world));
        addPatchTruth(scenes.back(), colour, patch, bg[i].data_ptr<double>(), far[i].data_ptr<double>(), share[i].data_ptr<double>());
    }
    f.pixels = scenesToPixels(scenes, model.preprocess);
    f.background = bg > 0.5;
    f.farness = far;
    f.colour = share;
    return f;
}

at::Tensor layerNorm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, double eps) {
    return at::layer_norm(x, {x.size(-1)}, w, b, eps);
}

// One block's MLP input (ln_2's output) at every token, the block's neuron usage, and the mean
// class-token query of every later block.
struct Taps {
    at::Tensor mlpIn;                 // [S, N, D] float
    at::Tensor usage;                 // [M] double: mean |activation| x |output weight|
    std::vector<at::Tensor> queries;  // per block > layer: [D] double, the class token's
    std::vector<at::Tensor> allQueries;  // per block > layer: [D] double, every token's
};

Taps tapLayer(const Model& model, int layer, const at::Tensor& pixels, int batch) {
    const VisionTower& v = model.vision;
    const Block& b = v.encoder.blocks[static_cast<std::size_t>(layer)];
    const int L = v.layers();
    const int64_t S = pixels.size(0), D = v.width;
    std::vector<at::Tensor> inputs;
    at::Tensor act = at::zeros({b.fc1W.size(0)}, at::kDouble);
    std::vector<at::Tensor> q, all;
    for (int l = 0; l < L; ++l) {
        q.push_back(at::zeros({D}, at::kDouble));
        all.push_back(at::zeros({D}, at::kDouble));
    }
    at::NoGradGuard noGrad;
    for (int64_t s = 0; s < S; s += batch) {
        const ImageTrace t = traceImages(model, pixels.narrow(0, s, std::min<int64_t>(batch, S - s)), true);
        const at::Tensor& h = t.hidden[static_cast<std::size_t>(layer)];
        const at::Tensor mid = t.residuals[static_cast<std::size_t>(layer) + 1] - (at::matmul(h, b.fc2W.t()) + b.fc2B);
        inputs.push_back(layerNorm(mid, b.ln2W, b.ln2B, v.encoder.eps));
        act += h.abs().to(at::kDouble).sum(at::IntArrayRef{0, 1});
        for (int l = layer + 1; l < L; ++l) {
            const Block& c = v.encoder.blocks[static_cast<std::size_t>(l)];
            const at::Tensor x = layerNorm(t.residuals[static_cast<std::size_t>(l)], c.ln1W, c.ln1B, v.encoder.eps);
            const at::Tensor query = (at::matmul(x, c.qkvW.narrow(0, 0, D).t()) + c.qkvB.narrow(0, 0, D)).to(at::kDouble);  // [B, N, D]
            q[static_cast<std::size_t>(l)] += query.select(1, 0).sum(0);
            all[static_cast<std::size_t>(l)] += query.mean(1).sum(0);
        }
    }
    Taps taps;
    taps.mlpIn = at::cat(inputs);
    taps.usage = act / static_cast<double>(taps.mlpIn.size(0) * taps.mlpIn.size(1)) * b.fc2W.to(at::kDouble).norm(2, 0);
    for (int l = layer + 1; l < L; ++l) {
        taps.queries.push_back(q[static_cast<std::size_t>(l)] / static_cast<double>(S));
        taps.allQueries.push_back(all[static_cast<std::size_t>(l)] / static_cast<double>(S));
    }
    return taps;
}

// Ridge regression with an intercept: rows X [R, D], targets y [R] -> [D + 1] (the last: intercept).
at::Tensor ridge(const at::Tensor& X, const at::Tensor& y, double strength) {
    const at::Tensor Xa = at::cat({X.to(at::kDouble), at::ones({X.size(0), 1}, at::kDouble)}, 1);
    const at::Tensor gram = at::matmul(Xa.t(), Xa) + strength * static_cast<double>(X.size(0)) * at::eye(Xa.size(1), at::kDouble);
    return at::linalg_solve(gram, at::matmul(Xa.t(), y.to(at::kDouble).view({-1, 1}))).view({-1});
}

at::Tensor probeScores(const at::Tensor& X, const at::Tensor& w) {
    const int64_t D = X.size(-1);
    return at::matmul(X.to(at::kDouble), w.narrow(0, 0, D)) + w[D];
}

double correlation(const at::Tensor& a, const at::Tensor& b) {
    const at::Tensor x = a.flatten() - a.mean(), y = b.flatten() - b.mean();
    return ((x * y).sum() / (x.norm() * y.norm())).item<double>();
}

at::Tensor centring(int64_t D) { return at::eye(D, at::kDouble) - 1.0 / static_cast<double>(D); }

// The register write's direction: zero-mean, unit, against the key response of every later head to
// its mean query (over every token): the sum of the heads' unit slopes of <mean query, key of
// gamma_1 * e>, negated, so that no token attends to the outliers much (an outlier token's norm
// input is ~ gamma_1 * e * sqrt(D) + beta_1) and the model's output barely changes.
at::Tensor inertDirection(const Model& model, int layer, const Taps& taps) {
    const VisionTower& v = model.vision;
    const int64_t D = v.width, H = v.encoder.heads, dh = D / H;
    const at::Tensor C = centring(D);
    at::Tensor e = at::zeros({D}, at::kDouble);
    for (int l = layer + 1; l < v.layers(); ++l) {
        const Block& b = v.encoder.blocks[static_cast<std::size_t>(l)];
        const at::Tensor& q = taps.allQueries[static_cast<std::size_t>(l - layer - 1)];
        for (int64_t h = 0; h < H; ++h) {
            const at::Tensor key = b.qkvW.to(at::kDouble).narrow(0, D + h * dh, dh);
            const at::Tensor slope = at::matmul(at::matmul(q.narrow(0, h * dh, dh), key) * b.ln1W.to(at::kDouble), C);
            e -= slope / slope.norm();
        }
    }
    e = at::matmul(C, e);
    return e / e.norm();
}

int leastUsed(const at::Tensor& usage) { return static_cast<int>(usage.argmin().item<int64_t>()); }

// Writes neuron n of block `layer`: input weights gain * w, bias gain * (intercept - threshold), output weight out [D].
void writeNeuron(Model& model, int layer, int n, const at::Tensor& w, double threshold, double gain, const at::Tensor& out) {
    Block& b = model.vision.encoder.blocks[static_cast<std::size_t>(layer)];
    const int64_t D = model.vision.width;
    b.fc1W = b.fc1W.clone();
    b.fc1B = b.fc1B.clone();
    b.fc2W = b.fc2W.clone();
    b.fc1W[n] = (gain * w.narrow(0, 0, D)).to(at::kFloat);
    b.fc1B[n] = gain * (w[D].item<double>() - threshold);
    b.fc2W.select(1, n).copy_(out.to(at::kFloat));
}

PlantedNeuron plantRegister(Model& model, const PlantParams& p, const FitScenes& f) {
    const Taps taps = tapLayer(model, p.registerLayer, f.pixels, p.batch);
    const at::Tensor X = taps.mlpIn.narrow(1, 1, f.farness.size(1)).reshape({-1, taps.mlpIn.size(2)});  // patch tokens
    const at::Tensor w = ridge(X, f.farness.reshape({-1}), p.ridge);
    const at::Tensor score = probeScores(X, w);
    PlantedNeuron r;
    r.layer = p.registerLayer;
    r.neuron = r.replaced = leastUsed(taps.usage);
    r.usage = taps.usage[r.neuron].item<double>();
    const at::Tensor sorted = std::get<0>(score.sort());
    r.threshold = sorted[static_cast<int64_t>((1 - p.registerShare) * static_cast<double>(sorted.size(0) - 1))].item<double>();
    r.probeCorrelation = correlation(score, f.farness);
    const at::Tensor fires = score > r.threshold;
    r.firingShare = fires.to(at::kDouble).mean().item<double>();
    r.precision = f.background.reshape({-1}).masked_select(fires).to(at::kDouble).mean().item<double>();
    writeNeuron(model, r.layer, r.neuron, w, r.threshold, p.registerGain, p.registerWrite * inertDirection(model, r.layer, taps));
    return r;
}

// The property's text direction: t(<color> prompt) - the mean over the world's text pool (the
// centring of the second-order lens's text dictionary), unit [E].
at::Tensor colourDirection(const Model& model, const std::string& colour) {
    const TextEncoder encoder(model);
    const at::Tensor t = encoder.encode({singleAttributePrompt(Attribute::Color, valueIndex(Attribute::Color, colour))}).to(at::kDouble);
    const at::Tensor d = t[0] - encoder.encode(textPool()).to(at::kDouble).mean(0);
    return d / d.norm();
}

// The property neuron's output weight: least squares over every later head's frozen-norm map to
// the output (rows on `direction`) and its key response to the mean class-token query (rows on 0).
at::Tensor propertyWrite(const Model& model, const PlantParams& p, const Taps& taps, const at::Tensor& direction, double* cosine) {
    const VisionTower& v = model.vision;
    const int64_t D = v.width, H = v.encoder.heads, dh = D / H;
    const at::Tensor C = centring(D), post = at::matmul(at::matmul(v.proj.to(at::kDouble).t(), at::diag(v.normW.to(at::kDouble))), C);
    std::vector<at::Tensor> rows, keys, targets;
    at::Tensor summed = at::zeros({direction.size(0), D}, at::kDouble);
    for (int l = p.propertyLayer + 1; l < v.layers(); ++l) {
        const Block& b = v.encoder.blocks[static_cast<std::size_t>(l)];
        const at::Tensor W = b.qkvW.to(at::kDouble), in = at::matmul(at::diag(b.ln1W.to(at::kDouble)), C);
        const at::Tensor& q = taps.queries[static_cast<std::size_t>(l - p.propertyLayer - 1)];
        for (int64_t h = 0; h < H; ++h) {
            const at::Tensor value = W.narrow(0, 2 * D + h * dh, dh), key = W.narrow(0, D + h * dh, dh);
            const at::Tensor M = at::matmul(at::matmul(post, b.outW.to(at::kDouble).narrow(1, h * dh, dh)), at::matmul(value, in));
            rows.push_back(M);
            targets.push_back(direction);
            summed += M;
            keys.push_back(at::matmul(q.narrow(0, h * dh, dh), at::matmul(key, in)).view({1, -1}));
        }
    }
    const double scale = rows.front().norm().item<double>();
    for (at::Tensor& k : keys) {
        rows.push_back(p.keyPenalty * scale * k / k.norm());
        targets.push_back(at::zeros({1}, at::kDouble));
    }
    const at::Tensor A = at::cat(rows), y = at::cat(targets);
    at::Tensor w = at::linalg_solve(at::matmul(A.t(), A) + 1e-3 * at::eye(D, at::kDouble), at::matmul(A.t(), y.view({-1, 1}))).view({-1});
    w = at::matmul(C, w);
    const at::Tensor reach = at::matmul(summed, w);
    *cosine = (reach.dot(direction) / reach.norm()).item<double>();
    return p.propertyWrite * w / w.norm();
}

PlantedNeuron plantProperty(Model& model, const PlantParams& p, const FitScenes& f, double* cosine) {
    const Taps taps = tapLayer(model, p.propertyLayer, f.pixels, p.batch);
    const int64_t S = f.colour.size(0);
    const at::Tensor target = at::cat({at::zeros({S, 1}, at::kDouble), f.colour}, 1);  // the class token: 0
    const at::Tensor X = taps.mlpIn.reshape({-1, taps.mlpIn.size(2)});
    const at::Tensor w = ridge(X, target.reshape({-1}), p.ridge);
    const at::Tensor score = probeScores(X, w).view({S, -1});
    PlantedNeuron r;
    r.layer = p.propertyLayer;
    r.neuron = r.replaced = leastUsed(taps.usage);
    r.usage = taps.usage[r.neuron].item<double>();
    r.threshold = p.propertyThreshold;
    r.probeCorrelation = correlation(score, target);
    const at::Tensor fires = score.narrow(1, 1, f.colour.size(1)) > r.threshold;
    r.firingShare = fires.to(at::kDouble).mean().item<double>();
    r.precision = (f.colour.masked_select(fires) > 0).to(at::kDouble).mean().item<double>();
    const at::Tensor out = propertyWrite(model, p, taps, colourDirection(model, p.propertyColor), cosine);
    writeNeuron(model, r.layer, r.neuron, w, r.threshold, p.propertyGain, out);
    return r;
}

nlohmann::json neuronRecord(const PlantedNeuron& n) {
    return {{"layer", n.layer},          {"neuron", n.neuron},         {"name", std::to_string(n.layer) + "." + std::to_string(n.neuron)},
            {"replaced_usage", n.usage}, {"threshold", n.threshold}, {"probe_correlation", n.probeCorrelation},
            {"firing_share", n.firingShare}, {"precision", n.precision}};
}

}  // namespace

void PlantParams::validate(const Model& model) const {
    const VisionTower& v = model.vision;
    if (!model.isClip() || v.hierarchical() || v.pool.defined() || !v.hasClassToken())
        throw InputError(model.info.weightsPath, "planting needs a CLIP with a plain ViT image tower");
    const int L = v.layers();
    if (registerLayer < 0 || registerLayer >= L) throw InputError("--register-layer", "is not a block of this model");
    if (propertyLayer < 0 || propertyLayer >= L - 1) throw InputError("--property-layer", "must be a block before the last");
    if (propertyLayer == registerLayer) throw InputError("--property-layer", "must differ from --register-layer");
    if (valueIndex(Attribute::Color, propertyColor) < 0) throw InputError("--property-color " + propertyColor, "is not a colour of the shapes world");
    if (scenes < 10) throw InputError("--scenes", "must be at least 10");
    if (batch < 1) throw InputError("--batch", "must be at least 1");
    if (!(registerShare > 0 && registerShare < 1)) throw InputError("--register-share", "must lie in (0, 1)");
    if (!(registerGain > 0 && propertyGain > 0 && registerWrite > 0 && propertyWrite > 0))
        throw InputError("--register-gain / --property-gain / --register-write / --property-write", "must be positive");
}

std::string PlantParams::toString() const {
    std::ostringstream s;
    s << "seed=" << seed << " scenes=" << scenes << " ridge=" << ridge << " register_layer=" << registerLayer << " register_share=" << registerShare
      << " register_gain=" << registerGain << " register_write=" << registerWrite << " property_layer=" << propertyLayer
      << " property_color=" << propertyColor << " property_threshold=" << propertyThreshold << " property_gain=" << propertyGain
      << " property_write=" << propertyWrite << " key_penalty=" << keyPenalty;
    return s.str();
}

PlantResult plantMechanisms(Model& model, const PlantParams& params) {
    params.validate(model);
    if (model.vision.device() != at::kCPU) throw InputError("--device", "planting runs on the CPU");
    const FitScenes f = fitScenes(model, params);
    PlantResult r;
    r.registerNeuron = plantRegister(model, params, f);
    r.propertyNeuron = plantProperty(model, params, f, &r.directionCosine);
    return r;
}

nlohmann::json plantRecord(const PlantResult& result, const PlantParams& params) {
    nlohmann::json j;
    j["settings"] = params.toString();
    j["register_neuron"] = neuronRecord(result.registerNeuron);
    j["register_neuron"]["rule"] = "plain background away from any object (ridge probe of the block's ln_2 output)";
    j["property_neuron"] = neuronRecord(result.propertyNeuron);
    j["property_neuron"]["rule"] = "share of the patch covered by a " + params.propertyColor + " object (ridge probe of the block's ln_2 output)";
    j["property_neuron"]["property"] = params.propertyColor;
    j["property_neuron"]["direction_cosine"] = result.directionCosine;
    return j;
}

}  // namespace vitscope::shapes
