#include "heatmap_options.h"

#include "error.h"
#include "model/forward.h"
#include "resources.h"

#include <algorithm>
#include <optional>
#include <sstream>

namespace vitscope::cli {

namespace {

// "auto" or an integer >= -1 (checked against the model's layers by GradientMapParams::validate).
std::optional<int> parseStartLayer(const std::string& value) {
    if (value == "auto") return std::nullopt;
    try {
        std::size_t used = 0;
        const int v = std::stoi(value, &used);
        if (used == value.size() && v >= -1) return v;
    } catch (const std::exception&) {
    }
    throw InputError("--chefer-start-layer " + value, "must be auto, -1 (the last layer only) or a layer index");
}

}  // namespace

void addHeatmapModelOptions(CLI::App* sub, HeatmapModelOptions& o) {
    addModelOptions(sub, o.model);
    sub->add_option("--aligner", o.aligner, "Aligner into CLIP space (non-CLIP models)");
    sub->add_option("--clip", o.clip, "CLIP model for the texts of a non-CLIP model (default: the aligner's)");
    sub->add_option("--reference-texts", o.referenceTexts,
                    "Texts whose mean score is removed (decomposition) / compared (surgery); Grad-CAM's label list when --labels is not "
                    "given; refused by the other methods, which use none");
    sub->add_option("--labels", o.labels, "Grad-CAM's label list (a text file): its target is the text's softmax probability over them "
                                          "(pytorch-grad-cam's CLIP recipe)");
    sub->add_option("--gradcam-target", o.gradcamTarget,
                    "Grad-CAM's score for a text: auto (probability with a label list, else logit), probability or logit")
        ->capture_default_str();
    sub->add_option("--surgery-blocks", o.surgeryBlocks, "CLIP Surgery: last K blocks")->capture_default_str();
    sub->add_option("--surgery-ensemble", o.surgeryEnsemble,
                    "CLIP Surgery's 85-template prompt ensemble for its texts: auto (on for BPE models), on, off")
        ->capture_default_str();
    sub->add_option("--chefer-start-layer", o.cheferStartLayer,
                    "Chefer: first layer whose attention enters the relevance; auto = -1 (the last only, its CLIP notebook) for CLIP and "
                    "SigLIP, 0 (every layer, its ViT notebook) for supervised ViTs")
        ->capture_default_str();
    sub->add_option("--siglip-map", o.siglipMap,
                    "SigLIP's decomposition map with no --heads: pool (the pooling heads' per-token terms, as TextSpan's SigLIP demo) or "
                    "encoder (every encoder head through the frozen pool)")
        ->capture_default_str();
    sub->add_option("--legrad-layers", o.legradLayers, "LeGrad: the last K layers (its default layer_index -2)")->capture_default_str();
    sub->add_option("--input-size", o.inputSize,
                    "Squash the image to N x N and resample the position embeddings (bicubic, antialiased, as timm's "
                    "resample_abs_pos_embed): LeGrad's reference input (448 in its README); 0: the model's own size")
        ->capture_default_str();
    sub->add_flag("--squash", o.squash, "Resize the whole image to the input size (no center crop), as CLIP Surgery's demo "
                                        "(SigLIP models always do)");
}

HeatmapSession openHeatmapContext(const HeatmapModelOptions& o, bool needText) {
    HeatmapSessionOptions s;
    s.needText = needText;
    s.model = o.model.model;
    s.tokenizer = o.model.tokenizer;
    s.device = o.model.device;
    s.aligner = o.aligner;
    s.clip = o.clip;
    s.referenceTexts = o.referenceTexts;
    s.labels = o.labels;
    s.checkpointKey = o.model.checkpointKey;
    s.surgeryEnsemble = o.surgeryEnsemble;
    HeatmapSession c = openHeatmapSession(s);
    if (!c.text && (!o.referenceTexts.empty() || !o.labels.empty()))
        throw InputError(o.referenceTexts.empty() ? "--labels " + o.labels : "--reference-texts " + o.referenceTexts,
                         "needs a text side to embed the texts, and " + o.model.model + " has none (pass --aligner)");
    if (o.squash) c.model->preprocess.squash = true;  // models that squash already (SigLIP) keep doing so
    if (o.inputSize < 0) throw InputError("--input-size " + std::to_string(o.inputSize), "must be positive (0: the model's own size)");
    if (o.inputSize > 0) setInputSize(*c.model, o.inputSize);
    if (o.legradLayers < 1) throw InputError("--legrad-layers", "must be at least 1");
    c.cheferStartLayer = parseStartLayer(o.cheferStartLayer);
    c.gradcamTarget = parseGradCamTarget(o.gradcamTarget);
    c.pooledMap = parsePooledMap(o.siglipMap);
    if (c.pooledMap != PooledMap::Pool && !c.model->vision.pool.defined())
        throw InputError("--siglip-map " + o.siglipMap, "applies to attention-pooled models (SigLIP); " + o.model.model + " has none");
    c.legradLayers = o.legradLayers;
    GradientMapParams g;
    g.cheferStartLayer = c.cheferStartLayer;
    g.legradLayers = c.legradLayers;
    try {
        g.validate(*c.model);
    } catch (const InputError&) {
        throw InputError("--chefer-start-layer " + o.cheferStartLayer,
                         "must be auto, -1 or a layer index below " + std::to_string(c.model->vision.layers()));
    }
    if (c.gradcamTarget == GradCamTarget::Probability && !c.labels.defined() && !c.reference.defined())
        throw InputError("--gradcam-target probability", "needs a label list: --labels FILE or --reference-texts FILE");
    return c;
}

void checkModelOptionsFor(const HeatmapModelOptions& o, const std::vector<HeatmapMethod>& methods) {
    auto any = [&](std::initializer_list<HeatmapMethod> users) {
        for (HeatmapMethod m : methods)
            if (std::find(users.begin(), users.end(), m) != users.end()) return true;
        return false;
    };
    std::string names;
    for (HeatmapMethod m : methods) names += (names.empty() ? "" : ", ") + std::string(heatmapMethodName(m));
    if (!o.referenceTexts.empty() && !any({HeatmapMethod::Decomposition, HeatmapMethod::Surgery, HeatmapMethod::GradCam}))
        throw InputError("--reference-texts " + o.referenceTexts, "is used by decomposition, surgery and gradcam only, not by " + names +
                                                                      " (chefer and legrad score the text's own logit / cosine); drop the option");
    if (o.siglipMap != "pool" && !any({HeatmapMethod::Decomposition}))
        throw InputError("--siglip-map " + o.siglipMap, "chooses the decomposition map's level; " + names + " has none");
    if (!o.labels.empty() && !any({HeatmapMethod::GradCam})) throw InputError("--labels " + o.labels, "is Grad-CAM's label list; " + names + " uses none");
    if (o.gradcamTarget != "auto" && !any({HeatmapMethod::GradCam}))
        throw InputError("--gradcam-target " + o.gradcamTarget, "sets Grad-CAM's score; " + names + " has none");
    if (o.cheferStartLayer != "auto" && !any({HeatmapMethod::Chefer}))
        throw InputError("--chefer-start-layer " + o.cheferStartLayer, "sets Chefer's relevance; " + names + " has none");
}

std::vector<HeatmapMethod> parseMethodList(const std::string& list, const Model& model) {
    if (list == "all") return heatmapMethodsFor(model);
    std::vector<HeatmapMethod> methods;
    std::stringstream ss(list);
    std::string m;
    while (std::getline(ss, m, ',')) methods.push_back(parseHeatmapMethod(m));
    return methods;
}

at::Tensor classTable(const TextEncoder& text, const std::vector<std::string>& names, const std::string& templatesFile, std::string* used) {
    std::vector<std::string> templates;
    *used = "none (each class line is its prompt)";
    if (!templatesFile.empty()) {
        if (text.wordVocabulary())
            throw InputError("--templates " + templatesFile, "cannot be read by a word-vocabulary model: pass class prompts in --classes");
        templates = readTextList(templatesFile);
        *used = templatesFile;
    } else if (!text.wordVocabulary() && !dataFile("resources/templates/classes.txt").empty()) {
        templates = readTextList(dataFile("resources/templates/classes.txt"));
        *used = "resources/templates/classes.txt";
    }
    return text.encodeEnsemble(names, templates);
}

}  // namespace vitscope::cli
