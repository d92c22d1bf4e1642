#include "analysis/session.h"

#include "error.h"
#include "model/loader.h"
#include "model/precision.h"
#include "resources.h"
#include "runtime.h"

#include <filesystem>

#include <sstream>

namespace vitscope {

namespace {

// An aligner records its CLIP model as it was named when the aligner was made (often relative,
// "models/shapes-clip"); find it from anywhere: as given, beside the aligner's model folder, or
// among the data roots (an installed copy).
std::string resolveRecordedModel(const std::string& spec, const std::string& alignerPath) {
    std::error_code ec;
    if (spec.empty() || std::filesystem::exists(spec, ec)) return spec;
    const std::filesystem::path sibling =
        std::filesystem::path(alignerPath).parent_path().parent_path() / std::filesystem::path(spec).filename();
    if (std::filesystem::exists(sibling, ec)) return sibling.string();
    const std::string data = dataFile(spec);
    return data.empty() ? spec : data;
}

}  // namespace

Model openModelOn(const std::string& spec, const std::string& device, const std::string& tokenizer,
                  const std::string& checkpointKey, const std::string& precision) {
    CheckpointOptions options;
    options.checkpointKey = checkpointKey;
    const std::string wanted = precision.empty() ? defaultPrecision() : precision;
    const Precision p = resolvePrecision(wanted, device);  // before the load: a refusal costs nothing
    Model model = loadModel(spec, options);
    if (!tokenizer.empty()) model.tokenizerPath = tokenizer;
    moveModel(model, pickDevice(device));
    applyPrecision(model, p);
    return model;
}

CacheSession openCacheSession(const CacheSessionOptions& o, bool needText) {
    CacheSession c;
    c.cache = std::make_unique<DatasetCache>(o.cache);
    std::string clipSpec = o.clipModel;
    if (!o.aligner.empty()) {
        c.aligner = loadAligner(o.aligner);
        if (clipSpec.empty()) {
            const auto it = c.aligner->settings.find("clip_model");
            if (it != c.aligner->settings.end()) clipSpec = resolveRecordedModel(it->second, o.aligner);
        }
    }
    c.view = std::make_unique<CacheView>(*c.cache, c.aligner ? &*c.aligner : nullptr);
    if (!needText) return c;
    if (clipSpec.empty()) clipSpec = c.cache->modelSpec();
    if (clipSpec.empty()) throw InputError(o.cache, "records no model; pass --model (a CLIP model for the texts)");
    c.clip = std::make_unique<Model>(openModelOn(clipSpec, o.device, o.tokenizer));
    if (!c.aligner) {
        if (!c.clip->isClip())
            throw InputError(o.cache, "was made with a non-CLIP model (" + c.clip->info.family + "); pass --aligner and a CLIP --model");
        c.cache->checkModel(*c.clip);
    }
    c.text = std::make_unique<TextEncoder>(*c.clip);
    return c;
}

HeatmapParams HeatmapSession::params(HeatmapMethod method, const std::vector<std::pair<int, int>>& heads, int surgeryBlocks) const {
    HeatmapParams p;
    p.method = method;
    p.heads = heads;
    p.referenceTexts = method == HeatmapMethod::Surgery && surgeryEnsemble ? surgeryReference : reference;
    p.redundantText = redundant;
    if (method == HeatmapMethod::LeGrad) p.legradEmptyText = legradEmpty;
    p.cheferStartLayer = cheferStartLayer;
    p.gradcamTarget = gradcamTarget;
    p.labels = labels;
    p.textLogitScale = textLogitScale;
    p.legradLayers = legradLayers;
    p.pooledMap = pooledMap;
    p.surgeryBlocks = surgeryBlocks;
    return p;
}

HeatmapSession openHeatmapSession(const HeatmapSessionOptions& o) {
    HeatmapSession c;
    c.model = std::make_unique<Model>(openModelOn(o.model, o.device, o.tokenizer, o.checkpointKey, o.precision));
    const Model* textModel = c.model.get();
    const std::string alignerPath = !o.aligner.empty() ? o.aligner : c.model->isClip() ? std::string() : o.alignerIfNotClip;
    if (!alignerPath.empty()) {
        c.aligner = loadAligner(alignerPath);
        std::string clipSpec = o.clip;
        const auto it = c.aligner->settings.find("clip_model");
        if (clipSpec.empty() && it != c.aligner->settings.end()) clipSpec = resolveRecordedModel(it->second, alignerPath);
        if (clipSpec.empty()) throw InputError(alignerPath, "records no CLIP model; pass --clip");
        c.clip = std::make_unique<Model>(openModelOn(clipSpec, o.device));
        textModel = c.clip.get();
        if (c.aligner->weight.size(0) != c.model->vision.embedDim())
            throw InputError(alignerPath, "maps " + std::to_string(c.aligner->weight.size(0)) + "-dimensional features, not this model's " +
                                            std::to_string(c.model->vision.embedDim()));
    } else if (!c.model->isClip()) {
        if (!o.needText) return c;
        throw InputError(o.model, "is not a CLIP model; pass --aligner (and --clip) to map it into CLIP space");
    }
    c.text = std::make_unique<TextEncoder>(*textModel);
    if (o.surgeryEnsemble != "auto" && o.surgeryEnsemble != "on" && o.surgeryEnsemble != "off")
        throw InputError("--surgery-ensemble " + o.surgeryEnsemble, "must be auto, on or off");
    c.surgeryEnsemble = o.surgeryEnsemble == "on" || (o.surgeryEnsemble == "auto" && !c.text->wordVocabulary());
    if (!o.referenceTexts.empty()) {
        const std::vector<std::string> texts = readTextList(o.referenceTexts);
        c.reference = c.text->encode(texts);
        if (c.surgeryEnsemble) c.surgeryReference = c.textsFor(HeatmapMethod::Surgery, texts);
    }
    if (!o.labels.empty()) c.labels = c.text->encode(readTextList(o.labels));
    if (c.clip) c.textLogitScale = c.clip->logitScale;
    c.redundant = c.textsFor(HeatmapMethod::Surgery, {""})[0];
    if (c.model->vision.pool.defined()) {
        // LeGrad's SigLIP correction prompt; a word-vocabulary model may not know it (no correction then).
        try {
            c.legradEmpty = c.text->encode({"a photo of a"})[0];
        } catch (const InputError&) {
        }
    }
    return c;
}

at::Tensor HeatmapSession::textsFor(HeatmapMethod method, const std::vector<std::string>& texts) const {
    if (method != HeatmapMethod::Surgery || !surgeryEnsemble) return text->encode(texts);
    const std::string file = dataFile("resources/templates/surgery.txt");
    if (file.empty()) throw IoError("resources/templates/surgery.txt", "not found (set VITSCOPE_DATA_DIR)");
    static const std::vector<std::string> kTemplates = readTextList(file);
    return text->encodeEnsemble(texts, kTemplates);
}

std::vector<std::pair<int, int>> parseHeadPairs(const std::string& list, int layers, int heads, int poolHeads) {
    std::vector<std::pair<int, int>> out;
    if (list.empty()) return out;
    std::stringstream ss(list);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (item.rfind("pool.h", 0) == 0) {
            int k = -1;
            try {
                std::size_t used = 0;
                k = std::stoi(item.substr(6), &used);
                if (used != item.size() - 6) k = -1;
            } catch (const std::exception&) {
            }
            if (poolHeads <= 0) throw InputError("--heads " + item, "the model has no attention-pooling head");
            if (k < 0 || k >= poolHeads)
                throw InputError("--heads " + item, "no such pooling head: the model has pool.h0..pool.h" + std::to_string(poolHeads - 1));
            out.emplace_back(layers, k);
            continue;
        }
        const std::size_t dot = item.find('.');
        int l = -1, h = -1;
        try {
            std::size_t a = 0, b = 0;
            if (dot == std::string::npos) throw std::invalid_argument("no dot");
            l = std::stoi(item.substr(0, dot), &a);
            h = std::stoi(item.substr(dot + 1), &b);
            if (a != dot || b != item.size() - dot - 1) throw std::invalid_argument("trailing");
        } catch (const std::exception&) {
            throw InputError("--heads " + item, std::string("unknown head name; heads are L.H") + (poolHeads > 0 ? " or pool.hK" : "") + ", zero-based");
        }
        if (l < 0 || l >= layers || h < 0 || h >= heads)
            throw InputError("--heads " + item,
                             "no such head: the model has " + std::to_string(layers) + " layers x " + std::to_string(heads) + " heads");
        out.emplace_back(l, h);
    }
    return out;
}

std::string alignerBesideModel(const std::string& spec) {
    std::error_code ec;
    const std::filesystem::path dir = std::filesystem::is_directory(spec, ec) ? std::filesystem::path(spec) : std::filesystem::path(spec).parent_path();
    const std::filesystem::path beside = dir / "aligner.safetensors";
    return std::filesystem::exists(beside, ec) ? beside.string() : std::string();
}

}  // namespace vitscope
