#include "analysis/align_fit.h"

#include "analysis/components.h"
#include "error.h"
#include "image/preprocess.h"
#include "model/forward.h"

#include <algorithm>

namespace vitscope {

void AlignerFitOptions::validate() const {
    if (!(heldOut > 0 && heldOut < 1)) throw InputError("--held-out", "must be a fraction within (0, 1)");
    if (batch < 1) throw InputError("--batch", "must be at least 1");
    if (decompose.tokens) throw InputError("align", "fits on per-head terms, not per-token ones");
    if (decompose.convention == Convention::TextSpan) throw InputError("--convention textspan", "is not an aligner convention (exact or vit-decompose)");
    params.validate();
}

AlignerFit fitAlignerOnImages(const Model& model, const std::string& modelName, const Model& clip, const std::string& clipName,
                              const std::vector<std::string>& images, const AlignerFitOptions& o, const JobContext& job) {
    o.validate();
    if (!clip.isClip()) throw InputError(clipName, "is not a CLIP model (the aligner maps into a CLIP image-embedding space)");
    const int64_t n = static_cast<int64_t>(images.size());
    const int64_t test = std::max<int64_t>(1, static_cast<int64_t>(n * o.heldOut));
    if (n - test < 2) throw InputError("images", "too few images to fit and test an aligner (" + std::to_string(n) + ")");
    at::NoGradGuard noGrad;
    std::vector<at::Tensor> terms, targets;
    std::vector<std::string> names;
    const JobContext decomposing = job.staged("decomposing images");
    for (int64_t start = 0; start < n; start += o.batch) {
        if (job.cancelled()) throw JobCancelled();
        const std::vector<std::string> chunk(images.begin() + start, images.begin() + std::min<int64_t>(n, start + o.batch));
        const Decomposition dec = decomposeImages(model, loadAndPreprocess(chunk, model.preprocess).to(model.vision.device()), o.decompose);
        terms.push_back(stackedTerms(dec, &names).to(at::kCPU, at::kFloat));
        targets.push_back(encodeImages(clip, loadAndPreprocess(chunk, clip.preprocess).to(clip.vision.device())).output.to(at::kCPU, at::kFloat));
        decomposing.report({std::min<int64_t>(n, start + o.batch), n, 0, 0, {}});
    }
    job.staged("fitting").report({0, 1, 0, 0, {}});
    const at::Tensor x = at::cat(terms), y = at::cat(targets);
    const at::Tensor xTrain = x.narrow(0, 0, n - test), yTrain = y.narrow(0, 0, n - test);
    const at::Tensor xTest = x.narrow(0, n - test, test), yTest = y.narrow(0, n - test, test);
    AlignerFit fit;
    fit.trained = n - test;
    fit.heldOut = test;
    fit.aligner = fitSharedAligner(xTrain.sum(1), yTrain);
    fit.sharedCosine = fit.cosine = meanCosine(fit.aligner.apply(xTest.sum(1)), yTest);
    if (o.perComponent) {
        at::AutoGradMode grad(true);
        fit.aligner = fitComponentAligner(xTrain, names, yTrain, o.params);
        at::NoGradGuard none;
        fit.cosine = meanCosine(applyToTerms(fit.aligner, xTest), yTest);
    }
    if (job.cancelled()) throw JobCancelled();
    fit.aligner.settings["convention"] = conventionName(o.decompose.convention);
    if (o.decompose.convention == Convention::VitDecompose)
        fit.aligner.settings["from_block"] = std::to_string(o.decompose.fromStage) + "," + std::to_string(o.decompose.fromBlock);
    fit.aligner.settings["clip_model"] = clipName;
    fit.aligner.settings["model"] = modelName;
    fit.aligner.settings["held_out_images"] = std::to_string(test);
    fit.aligner.settings["held_out_cosine"] = std::to_string(fit.cosine);
    fit.aligner.settings["held_out_cosine_shared"] = std::to_string(fit.sharedCosine);
    job.staged("fitting").report({1, 1, 0, 0, {}});
    return fit;
}

}  // namespace vitscope
