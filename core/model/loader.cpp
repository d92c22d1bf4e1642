#include "model/loader.h"

#include "error.h"
#include "io/checkpoint.h"
#include "io/file_util.h"
#include "model/loader_common.h"

#include <spdlog/spdlog.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

namespace fs = std::filesystem;

namespace vitscope {

namespace {

std::string someKeys(const StateDict& sd) {
    std::string out;
    int n = 0;
    for (const auto& [name, tensor] : sd) {
        if (n++ == 4) break;
        out += (out.empty() ? "" : ", ") + name;
    }
    return out;
}

nlohmann::json readJson(const std::string& path) {
    if (path.empty()) return nlohmann::json();
    const std::string text = readFileText(path);
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded()) throw FormatError(path, "not valid JSON");
    return j;
}

bool isFile(const fs::path& p) {
    std::error_code ec;
    return fs::is_regular_file(p, ec);
}

std::string firstExisting(const fs::path& dir, std::initializer_list<const char*> names) {
    for (const char* n : names)
        if (isFile(dir / n)) return (dir / n).string();
    return {};
}

std::string homeCache(const char* sub) {
    const char* home = std::getenv("HOME");
    return home ? (fs::path(home) / ".cache" / sub).string() : std::string();
}

fs::path hubRoot() {
    if (const char* c = std::getenv("HF_HUB_CACHE")) return c;
    if (const char* h = std::getenv("HF_HOME")) return fs::path(h) / "hub";
    return homeCache("huggingface/hub");
}

// models--ORG--NAME/snapshots/<rev>/ : the snapshot named by refs/main, else the newest.
std::string hubSnapshot(const fs::path& repoDir) {
    std::error_code ec;
    const fs::path snaps = repoDir / "snapshots";
    if (!fs::is_directory(snaps, ec)) return {};
    std::ifstream ref(repoDir / "refs" / "main");
    std::string rev;
    if (ref && std::getline(ref, rev) && fs::is_directory(snaps / rev, ec)) return (snaps / rev).string();
    fs::path best;
    fs::file_time_type bestTime{};
    for (const auto& entry : fs::directory_iterator(snaps, ec)) {
        if (!entry.is_directory()) continue;
        const auto t = fs::last_write_time(entry.path(), ec);
        if (best.empty() || t > bestTime) {
            best = entry.path();
            bestTime = t;
        }
    }
    return best.string();
}

// A shard of a sharded checkpoint: NAME-00001-of-00004.safetensors / .bin.
bool isShardName(const std::string& name) {
    const auto of = name.find("-of-");
    return of != std::string::npos && of >= 5 && std::isdigit(static_cast<unsigned char>(name[of - 1])) &&
           of + 4 < name.size() && std::isdigit(static_cast<unsigned char>(name[of + 4]));
}

std::string findWeightsIn(const fs::path& dir) {
    std::string w = firstExisting(dir, {"open_clip_model.safetensors", "model.safetensors", "model.safetensors.index.json",
                                        "open_clip_pytorch_model.bin", "pytorch_model.bin", "pytorch_model.bin.index.json",
                                        "model.pth", "model.pt"});
    if (!w.empty()) return w;
    std::error_code ec;
    std::vector<std::string> found, shards;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        const std::string name = entry.path().filename().string();
        const std::string ext = entry.path().extension().string();
        if (!entry.is_regular_file()) continue;
        if (name.size() > 11 && name.compare(name.size() - 11, 11, ".index.json") == 0) found.push_back(entry.path().string());
        else if (ext == ".safetensors" || ext == ".pt" || ext == ".pth" || ext == ".bin")
            (isShardName(name) ? shards : found).push_back(entry.path().string());
    }
    std::sort(found.begin(), found.end());
    if (found.empty() && !shards.empty())
        throw IoError(dir.string(), "holds checkpoint shards (" + fs::path(shards.front()).filename().string() +
                                        ", ...) but no index file (model.safetensors.index.json) naming them");
    return found.empty() ? std::string() : found.front();
}

ModelFiles filesBeside(const std::string& weights) {
    ModelFiles files;
    files.weights = weights;
    const fs::path dir = fs::path(weights).parent_path().empty() ? fs::path(".") : fs::path(weights).parent_path();
    files.config = firstExisting(dir, {"open_clip_config.json", "config.json", "timm_config.json"});
    files.preprocessorConfig = firstExisting(dir, {"preprocessor_config.json"});
    files.tokenizer = firstExisting(dir, {"bpe_simple_vocab_16e6.txt.gz", "vocab.txt", "spiece.model"});
    if (files.tokenizer.empty() && isFile(dir / "vocab.json") && isFile(dir / "merges.txt")) files.tokenizer = dir.string();
    if (files.tokenizer.empty()) {
        std::error_code ec;
        for (const auto& entry : fs::directory_iterator(dir, ec)) {
            const std::string name = entry.path().filename().string();
            if (entry.is_regular_file() && name.size() > 7 && name.substr(name.size() - 7) == ".txt.gz")
                files.tokenizer = entry.path().string();
        }
    }
    return files;
}

}  // namespace

ModelFiles resolveModelFiles(const std::string& spec) {
    std::error_code ec;
    fs::path p(spec);
    if (isFile(p)) return filesBeside(spec);
    if (fs::is_directory(p, ec)) {
        const std::string snap = hubSnapshot(p);
        const fs::path dir = snap.empty() ? p : fs::path(snap);
        const std::string w = findWeightsIn(dir);
        if (w.empty()) throw IoError(spec, "directory holds no checkpoint (.safetensors, .bin, .pth or .pt)");
        return filesBeside(w);
    }
    if (!fs::exists(p, ec)) {
        // ORG/NAME in the Hugging Face hub cache.
        const auto slash = spec.find('/');
        if (slash != std::string::npos && spec.find('/', slash + 1) == std::string::npos) {
            const fs::path repo = hubRoot() / ("models--" + spec.substr(0, slash) + "--" + spec.substr(slash + 1));
            const std::string snap = hubSnapshot(repo);
            if (!snap.empty()) return resolveModelFiles(snap);
        }
        // OpenAI names in ~/.cache/clip ("ViT-B/32" is stored as ViT-B-32.pt).
        std::string name = spec;
        std::replace(name.begin(), name.end(), '/', '-');
        for (const std::string& candidate : {name, name + ".pt"}) {
            const fs::path c = fs::path(homeCache("clip")) / candidate;
            if (!homeCache("clip").empty() && isFile(c)) return filesBeside(c.string());
        }
    }
    throw IoError(spec, "no such model file or directory (also looked in the Hugging Face hub cache and ~/.cache/clip)");
}

std::vector<std::string> discoverModels() {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(hubRoot(), ec)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind("models--", 0) == 0 && !hubSnapshot(entry.path()).empty()) {
            std::string id = name.substr(8);
            const auto sep = id.find("--");
            if (sep != std::string::npos) id = id.substr(0, sep) + "/" + id.substr(sep + 2);
            out.push_back(id);
        }
    }
    const std::string clipDir = homeCache("clip");
    for (const auto& entry : fs::directory_iterator(clipDir, ec)) {
        if (entry.is_regular_file() && entry.path().extension() == ".pt") out.push_back(entry.path().string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

Model buildModel(const StateDict& tensors, const nlohmann::json& config, const std::string& where,
                 const nlohmann::json& preprocessorConfig) {
    const loader::Tensors t(tensors, where);
    Model model;
    auto holds = [&](Layout l) {
        const LayoutTable& lt = layoutTable(l);
        return t.has(lt.patch + ".weight") && t.has(lt.cls);
    };
    if (t.has(layoutTable(Layout::HfSiglip).pool.probe) ||
        (t.has("vision_model.embeddings.patch_embedding.weight") && !t.has(layoutTable(Layout::HfClip).cls)))
        model = loader::buildHfSiglip(t, config, preprocessorConfig);
    else if (t.has("visual.trunk.attn_pool.latent"))
        model = loader::buildOpenClipSiglip(t, config);
    else if (t.has(layoutTable(Layout::TimmSiglip).pool.probe))
        model = loader::buildTimmSiglip(t, config);
    else if (holds(Layout::OpenAi) || t.has("visual.conv1.weight") || t.has("visual.class_embedding") ||
        t.has("visual.trunk.patch_embed.proj.weight"))
        model = loader::buildOpenAiClip(t, config);
    else if (t.has(layoutTable(Layout::HfClip).patch + ".weight"))
        model = loader::buildHfClip(t, config, preprocessorConfig);
    else if (holds(Layout::Timm))
        model = loader::buildTimmVit(t, config);
    else if (holds(Layout::Torchvision))
        model = loader::buildTorchvisionVit(t, config);
    else if (t.has(layoutTable(Layout::TimmSwin).swin.patchNorm + ".weight") && t.has("layers.0.blocks.0.norm1.weight"))
        model = loader::buildSwin(t, config, Layout::TimmSwin);
    else if (t.has("features.1.0.attn.relative_position_bias_table") || t.has("features.1.0.attn.cpb_mlp.0.weight"))
        model = loader::buildSwin(t, config, Layout::TorchvisionSwin);
    else if (t.has("stages.0.blocks.0.conv.conv1_1x1.weight"))
        model = loader::buildMaxVit(t, config, Layout::TimmMaxVit);
    else if (t.has("blocks.0.layers.0.layers.MBconv.layers.conv_a.0.weight"))
        model = loader::buildMaxVit(t, config, Layout::TorchvisionMaxVit);
    else
        throw ModelError(where, "unknown architecture (tensors such as: " + someKeys(tensors) + ")");
    model.info.weightsPath = where;
    return model;
}

Model loadModel(const std::string& spec, const CheckpointOptions& options) {
    const ModelFiles files = resolveModelFiles(spec);
    Checkpoint ckpt = loadCheckpoint(files.weights, options);
    const nlohmann::json config = readJson(files.config);
    const nlohmann::json prep = readJson(files.preprocessorConfig);
    Model model = buildModel(ckpt.tensors, config, files.weights, prep);
    if (model.info.layout == "openai" && ckpt.format != CheckpointFormat::TorchScript) model.info.layout = "open_clip";
    model.info.format = checkpointFormatName(ckpt.format);
    model.info.shards = ckpt.shards;
    model.info.wrapperKey = ckpt.wrapperKey;
    model.info.wrapperCandidates = ckpt.wrapperCandidates;
    model.info.strippedPrefix = ckpt.strippedPrefix;
    model.info.ignoredTensors = ckpt.ignored;
    model.info.storedDTypes = ckpt.storedDTypes;
    model.tokenizerPath = files.tokenizer;
    spdlog::info("loaded {} ({} layout, {}{}{}): {} layers, {} heads, width {}", files.weights, model.info.layout,
                 model.info.format, ckpt.wrapperKey.empty() ? "" : ", key ", ckpt.wrapperKey, model.vision.layers(),
                 model.vision.heads(), model.vision.width);
    return model;
}

int VisionTower::headsIn(int layer) const {
    if (swin.defined()) return swin.stages[static_cast<std::size_t>(stageOf(layer))].heads;
    if (maxvit.defined()) return maxvit.stages[static_cast<std::size_t>(stageOf(layer))].heads;
    return encoder.heads;
}

int VisionTower::stageOf(int layer) const {
    int s = 0;
    for (std::size_t i = 1; i < swin.stages.size(); ++i)
        if (layer >= swin.stages[i].firstLayer) s = static_cast<int>(i);
    for (std::size_t i = 1; i < maxvit.stages.size(); ++i)
        if (layer >= maxvit.stages[i].firstLayer) s = static_cast<int>(i);
    return s;
}

std::vector<at::Tensor*> modelTensorSlots(Model& model) {
    std::vector<at::Tensor*> out;
    auto addEncoder = [&](Encoder& e) {
        for (Block& b : e.blocks)
            for (at::Tensor* t : {&b.ln1W, &b.ln1B, &b.qkvW, &b.qkvB, &b.outW, &b.outB, &b.ln2W, &b.ln2B, &b.fc1W, &b.fc1B,
                                  &b.fc2W, &b.fc2B, &b.ls1, &b.ls2, &b.qkvWr, &b.qkvBr, &b.outWr, &b.outBr, &b.fc1Wr,
                                  &b.fc1Br, &b.fc2Wr, &b.fc2Br})
                out.push_back(t);
    };
    VisionTower& v = model.vision;
    AttentionPool& p = v.pool;
    for (at::Tensor* t : {&v.patchW, &v.patchB, &v.cls, &v.extraPrefix, &v.registers, &v.pos, &v.lnPreW, &v.lnPreB, &v.normW,
                          &v.normB, &v.proj, &v.headW, &v.headB, &p.probe, &p.qkvW, &p.qkvB, &p.outW, &p.outB, &p.lnW, &p.lnB,
                          &p.fc1W, &p.fc1B, &p.fc2W, &p.fc2B})
        out.push_back(t);
    addEncoder(v.encoder);
    for (at::Tensor* t : {&v.swin.patchNormW, &v.swin.patchNormB}) out.push_back(t);
    for (SwinStage& st : v.swin.stages)
        for (at::Tensor* t : {&st.mergeNormW, &st.mergeNormB, &st.mergeW}) out.push_back(t);
    for (at::Tensor& t : v.swin.relBias) out.push_back(&t);
    MaxVitTower& mx = v.maxvit;
    for (at::Tensor* t : {&mx.stem1W, &mx.stem1B, &mx.stemNorm.scale, &mx.stemNorm.shift, &mx.stem2W, &mx.stem2B, &mx.preLogitsW,
                          &mx.preLogitsB})
        out.push_back(t);
    for (MaxVitStage& st : mx.stages)
        for (MbConv& c : st.convs)
            for (at::Tensor* t : {&c.pre.scale, &c.pre.shift, &c.norm1.scale, &c.norm1.shift, &c.norm2.scale, &c.norm2.shift, &c.expandW,
                                  &c.dwW, &c.seW1, &c.seB1, &c.seW2, &c.seB2, &c.projW, &c.projB, &c.shortW, &c.shortB})
                out.push_back(t);
    for (at::Tensor& t : mx.relBias) out.push_back(&t);
    if (model.text) {
        TextTower& tt = *model.text;
        for (at::Tensor* t : {&tt.tokenEmbedding, &tt.pos, &tt.lnFinalW, &tt.lnFinalB, &tt.proj, &tt.projB}) out.push_back(t);
        addEncoder(tt.encoder);
    }
    return out;
}

void moveModel(Model& model, const at::Device& device) {
    for (at::Tensor* t : modelTensorSlots(model))
        if (t->defined()) *t = t->to(device);
}

}  // namespace vitscope
