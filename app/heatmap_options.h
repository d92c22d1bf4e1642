#pragma once
// The heatmap commands' model options (heatmap, evaluate-heatmaps, evaluate imagenet-seg / ovseg):
// the model, its text side and each method's settings, read once into a HeatmapSession.
#include "analysis/heatmap.h"
#include "analysis/session.h"
#include "analysis/text_embed.h"
#include "cli_common.h"

#include <string>
#include <vector>

namespace vitscope::cli {

// The model whose image side is mapped, and the text side (itself when CLIP, else --clip with
// the aligner).
struct HeatmapModelOptions {
    ModelOptions model;
    std::string aligner;
    std::string clip;
    std::string referenceTexts;
    int surgeryBlocks = 6;
    std::string surgeryEnsemble = "auto";
    bool squash = false;
    std::string cheferStartLayer = "auto", gradcamTarget = "auto", labels, siglipMap = "pool";
    int legradLayers = 2;
    int inputSize = 0;
};

void addHeatmapModelOptions(CLI::App* sub, HeatmapModelOptions& o);
HeatmapSession openHeatmapContext(const HeatmapModelOptions& o, bool needText = true);
// "all" (the methods the model defines: Swin and MaxViT have no class-token attention) or a comma
// list of method names (InputError for an unknown one).
std::vector<HeatmapMethod> parseMethodList(const std::string& list, const Model& model);

// Class embeddings [C, E] from class names (or prompts): a template ensemble of `templatesFile`,
// or of resources/templates/classes.txt for BPE models when it is empty; each line as it is for
// word-vocabulary models (which refuse templates). `used` says which, for the records.
at::Tensor classTable(const TextEncoder& text, const std::vector<std::string>& names, const std::string& templatesFile, std::string* used);

// Options that no method of `methods` uses are refused, never ignored (one line naming the option).
void checkModelOptionsFor(const HeatmapModelOptions& o, const std::vector<HeatmapMethod>& methods);

}  // namespace vitscope::cli
