#pragma once
// Zero-shot accuracy of a CLIP model on held-out shapes-world scenes, with the protocol of the
// model card: for each attribute, the prompt for value v names only v
// (singleAttributePrompt), and the predicted value is the prompt with the highest cosine.
#include "model/model.h"
#include "shapes/world.h"
#include "text/text_tokenizer.h"

#include <array>

namespace vitscope::shapes {

// Held-out scenes use this seed offset, never used for training.
constexpr uint64_t kEvalSeed = 0x5EED0000E7A1ull;

struct ZeroShotResult {
    std::array<double, 6> accuracy{};  // by Attribute
    int64_t images = 0;
};

// Model input for scenes: [B, 3, S, S] normalised with the model's mean / std.
at::Tensor scenesToPixels(const std::vector<Scene>& scenes, const ImagePreprocess& prep);

ZeroShotResult evaluateZeroShot(const Model& model, const TextTokenizer& tokenizer, int64_t count,
                                uint64_t seed = kEvalSeed, const WorldParams& world = {});

// Diagnostic: accuracy per attribute of a ridge-regression linear probe on the normalised image
// embeddings (fit on `trainCount` scenes, scored on `testCount` others). High probe accuracy with
// low zero-shot accuracy means the image tower has the information and the text side lacks it.
ZeroShotResult linearProbe(const Model& model, int64_t trainCount, int64_t testCount, const WorldParams& world = {});

}  // namespace vitscope::shapes
