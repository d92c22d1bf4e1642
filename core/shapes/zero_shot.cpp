#include "shapes/zero_shot.h"

#include "error.h"
#include "model/forward.h"

#include <cstring>

namespace vitscope::shapes {

at::Tensor scenesToPixels(const std::vector<Scene>& scenes, const ImagePreprocess& prep) {
    if (scenes.empty()) throw InputError("scenes", "no scenes");
    const int s = scenes.front().image.rows;
    at::Tensor out = at::empty({static_cast<int64_t>(scenes.size()), s, s, 3}, at::kByte);
    for (std::size_t i = 0; i < scenes.size(); ++i)
        std::memcpy(out[static_cast<int64_t>(i)].data_ptr(), scenes[i].image.data, static_cast<std::size_t>(s * s * 3));
    const at::Tensor mean = at::tensor(std::vector<float>(prep.mean.begin(), prep.mean.end())).view({1, 3, 1, 1});
    const at::Tensor stdv = at::tensor(std::vector<float>(prep.std.begin(), prep.std.end())).view({1, 3, 1, 1});
    return ((out.permute({0, 3, 1, 2}).to(at::kFloat) / 255.0 - mean) / stdv).contiguous();
}

ZeroShotResult evaluateZeroShot(const Model& model, const TextTokenizer& tokenizer, int64_t count, uint64_t seed,
                                const WorldParams& world) {
    if (!model.text) throw InputError(model.info.weightsPath, "zero-shot evaluation needs a CLIP model");
    at::NoGradGuard guard;
    const int context = model.text->contextLength;
    // Text embeddings of every single-attribute prompt, normalised.
    std::array<at::Tensor, 6> prompts;
    for (std::size_t a = 0; a < kAttributes.size(); ++a) {
        const auto& values = attributeValues(kAttributes[a]);
        at::Tensor ids = at::zeros({static_cast<int64_t>(values.size()), context}, at::kLong);
        for (std::size_t v = 0; v < values.size(); ++v) {
            const auto t = tokenizer.tokenize(singleAttributePrompt(kAttributes[a], static_cast<int>(v)), context);
            std::copy(t.begin(), t.end(), ids[static_cast<int64_t>(v)].data_ptr<int64_t>());
        }
        const at::Tensor e = encodeTexts(model, ids);
        prompts[a] = e / e.norm(2, 1, true);
    }
    ZeroShotResult result;
    std::array<int64_t, 6> correct{};
    const int64_t batch = 250;
    for (int64_t start = 0; start < count; start += batch) {
        std::vector<Scene> scenes;
        for (int64_t i = start; i < std::min(count, start + batch); ++i) scenes.push_back(generateScene(seed, static_cast<uint64_t>(i), world));
        at::Tensor img = encodeImages(model, scenesToPixels(scenes, model.preprocess)).output;
        img = img / img.norm(2, 1, true);
        for (std::size_t a = 0; a < kAttributes.size(); ++a) {
            const at::Tensor pred = at::matmul(img, prompts[a].t()).argmax(1);
            for (std::size_t i = 0; i < scenes.size(); ++i)
                correct[a] += pred[static_cast<int64_t>(i)].item<int64_t>() == scenes[i].labels.value(kAttributes[a]);
        }
        result.images += static_cast<int64_t>(scenes.size());
    }
    for (std::size_t a = 0; a < 6; ++a) result.accuracy[a] = static_cast<double>(correct[a]) / static_cast<double>(result.images);
    return result;
}

namespace {

at::Tensor embedScenes(const Model& model, uint64_t seed, int64_t count, const WorldParams& world,
                       std::array<std::vector<int64_t>, 6>& labels) {
    std::vector<at::Tensor> out;
    for (int64_t start = 0; start < count; start += 250) {
        std::vector<Scene> scenes;
        for (int64_t i = start; i < std::min(count, start + 250); ++i) scenes.push_back(generateScene(seed, static_cast<uint64_t>(i), world));
        for (const Scene& s : scenes)
            for (std::size_t a = 0; a < 6; ++a) labels[a].push_back(s.labels.value(kAttributes[a]));
        const at::Tensor e = encodeImages(model, scenesToPixels(scenes, model.preprocess)).output;
        out.push_back(e / e.norm(2, 1, true));
    }
    return at::cat(out).to(at::kDouble);
}

}  // namespace

ZeroShotResult linearProbe(const Model& model, int64_t trainCount, int64_t testCount, const WorldParams& world) {
    at::NoGradGuard guard;
    std::array<std::vector<int64_t>, 6> trainLabels, testLabels;
    const at::Tensor xTrain = embedScenes(model, kEvalSeed + 10, trainCount, world, trainLabels);
    const at::Tensor xTest = embedScenes(model, kEvalSeed + 11, testCount, world, testLabels);
    auto withBias = [](const at::Tensor& x) { return at::cat({x, at::ones({x.size(0), 1}, x.options())}, 1); };
    const at::Tensor a = withBias(xTrain), t = withBias(xTest);
    const at::Tensor gram = at::matmul(a.t(), a) + 1e-3 * a.size(0) * at::eye(a.size(1), a.options());
    ZeroShotResult r;
    r.images = testCount;
    for (std::size_t k = 0; k < 6; ++k) {
        const int64_t values = static_cast<int64_t>(attributeValues(kAttributes[k]).size());
        const at::Tensor y = at::one_hot(at::tensor(trainLabels[k]), values).to(at::kDouble);
        const at::Tensor w = at::linalg_solve(gram, at::matmul(a.t(), y));
        const at::Tensor pred = at::matmul(t, w).argmax(1);
        r.accuracy[k] = pred.eq(at::tensor(testLabels[k])).to(at::kDouble).mean().item<double>();
    }
    return r;
}

}  // namespace vitscope::shapes
