// Reading SAE files in each project's layout, and vitscope's own format (analysis/sae.h).
#include "analysis/sae.h"

#include "error.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "io/tensor_io.h"
#include "io/torch_file.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

namespace fs = std::filesystem;

namespace vitscope {

namespace {

using Json = nlohmann::json;

Json readJson(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw IoError(path, "cannot be read");
    try {
        return Json::parse(in);
    } catch (const Json::exception& e) {
        throw FormatError(path, std::string("is not JSON (") + e.what() + ")");
    }
}

// A config value, FormatError naming the file and the key when it is missing or of another type.
template <typename T>
T configValue(const Json& j, const std::string& key, const std::string& path) {
    if (!j.contains(key) || j.at(key).is_null()) throw FormatError(path, "has no '" + key + "'");
    try {
        return j.at(key).get<T>();
    } catch (const Json::exception&) {
        throw FormatError(path, "'" + key + "' has the wrong type: " + j.at(key).dump());
    }
}

at::Tensor takeTensor(const StateDict& sd, const std::string& name, const std::string& path, const std::string& needs) {
    const auto it = sd.find(name);
    if (it == sd.end()) throw FormatError(path, "has no tensor '" + name + "' (" + needs + ")");
    return it->second.to(at::kFloat).contiguous();
}

void takeStandardWeights(SparseAutoencoder& sae, const StateDict& sd, const std::string& path,
                         const std::string& layout) {
    const std::string needs = "a " + layout + " SAE needs W_enc, b_enc, W_dec, b_dec";
    sae.W_enc = takeTensor(sd, "W_enc", path, needs);
    sae.b_enc = takeTensor(sd, "b_enc", path, needs);
    sae.W_dec = takeTensor(sd, "W_dec", path, needs);
    sae.b_dec = takeTensor(sd, "b_dec", path, needs);
}

// Prisma / SAELens hook names -> the layer of site "layer:L", -1 for "output".
int mapHookPoint(const std::string& hook, const std::string& path) {
    static const std::regex block(R"(^blocks\.(\d+)\.(hook_resid_post|hook_resid_pre)$)");
    static const std::regex output(R"(^(blocks\.\d+\.)?hook_post_head_pre_normalize$)");
    std::smatch m;
    if (std::regex_match(hook, output)) return -1;
    if (std::regex_match(hook, m, block)) {
        const int l = std::stoi(m[1].str());
        if (m[2].str() == "hook_resid_post") return l;
        if (l >= 1) return l - 1;
        throw InputError(
            path, "hook point " + hook +
                      " (the residual entering block 0) has no vitscope site; mapped: "
                      "blocks.L.hook_resid_post, blocks.L.hook_resid_pre (L >= 1), hook_post_head_pre_normalize");
    }
    throw InputError(path, "hook point " + hook +
                               " has no vitscope site; mapped: blocks.L.hook_resid_post, "
                               "blocks.L.hook_resid_pre (L >= 1), hook_post_head_pre_normalize");
}

SaeNormalize parseNormalize(const std::string& name, const std::string& path) {
    if (name == "none" || name.empty() || name == "expected_average_only_in") return SaeNormalize::None;
    if (name == "layer_norm") return SaeNormalize::LayerNorm;
    if (name == "constant_norm_rescale") return SaeNormalize::ConstantNorm;
    throw FormatError(path, "normalize_activations '" + name +
                                "' is not one of none, layer_norm, constant_norm_rescale, expected_average_only_in");
}

std::string normalizeKey(const Json& cfg) {
    if (!cfg.contains("normalize_activations") || cfg.at("normalize_activations").is_null()) return "none";
    const Json& v = cfg.at("normalize_activations");
    if (v.is_boolean()) return v.get<bool>() ? "expected_average_only_in" : "none";  // SAELens's pre-6.0 reading
    return v.is_string() ? v.get<std::string>() : "?";
}

// ---- ViT-Prisma --------------------------------------------------------------------------------

// The weights file of a Prisma folder: weights.pt, else the n_images_N.pt with the largest N.
std::string prismaWeights(const fs::path& dir) {
    if (fs::exists(dir / "weights.pt")) return (dir / "weights.pt").string();
    static const std::regex snapshot(R"(^n_images_(\d+)\.pt$)");
    std::string best;
    long long bestN = -1;
    for (const auto& e : fs::directory_iterator(dir)) {
        std::smatch m;
        const std::string name = e.path().filename().string();
        if (std::regex_match(name, m, snapshot) && std::stoll(m[1].str()) > bestN)
            bestN = std::stoll(m[1].str()), best = e.path().string();
    }
    if (best.empty())
        throw FormatError(dir.string(), "has config.json but no weights.pt or n_images_N.pt (a ViT-Prisma SAE folder)");
    return best;
}

void readPrismaActivation(SparseAutoencoder& sae, const Json& cfg, const std::string& path) {
    const std::string act = configValue<std::string>(cfg, "activation_fn_str", path);
    if (act == "relu") {
        sae.activation = SaeActivation::ReLU;
    } else if (act == "topk") {
        sae.activation = SaeActivation::TopKReLU;
        const Json kwargs = cfg.value("activation_fn_kwargs", Json::object());
        if (!kwargs.contains("k"))
            throw FormatError(path, "activation_fn_str is topk but activation_fn_kwargs has no 'k'");
        sae.k = kwargs.at("k").get<int>();
    } else {
        throw InputError(path, "activation_fn_str '" + act + "' is not supported (relu, topk)");
    }
}

// blocks.{hook_point_layer}.{layer_subtype} (VisionModelSAERunnerConfig.hook_point).
std::string prismaHook(const Json& cfg, const std::string& path) {
    if (cfg.contains("hook_point_head_index") && !cfg.at("hook_point_head_index").is_null())
        throw InputError(path, "reads one head (hook_point_head_index): no vitscope site");
    Json layer = cfg.contains("hook_point_layer") ? cfg.at("hook_point_layer") : Json();
    if (layer.is_array() && layer.size() == 1) layer = layer.at(0);
    if (!layer.is_number_integer()) throw FormatError(path, "has no integer 'hook_point_layer'");
    return "blocks." + std::to_string(layer.get<int>()) + "." + configValue<std::string>(cfg, "layer_subtype", path);
}

SparseAutoencoder loadPrisma(const std::string& configPath, const std::string& weightsPath) {
    const Json cfg = readJson(configPath);
    SparseAutoencoder sae;
    sae.path = weightsPath;
    sae.layout = "prisma";
    if (cfg.value("is_transcoder", false)) throw InputError(configPath, "is a transcoder, not an SAE");
    const std::string arch = cfg.value("architecture", std::string("standard"));
    if (arch != "standard") throw InputError(configPath, "architecture '" + arch + "' is not supported (standard)");
    sae.hookName = prismaHook(cfg, configPath);
    sae.layer = mapHookPoint(sae.hookName, configPath);
    readPrismaActivation(sae, cfg, configPath);
    sae.normalize = parseNormalize(normalizeKey(cfg), configPath);
    const Checkpoint ck = loadCheckpoint(weightsPath);
    takeStandardWeights(sae, ck.tensors, weightsPath, "ViT-Prisma");
    const int64_t dIn = configValue<int64_t>(cfg, "d_in", configPath);
    if (sae.W_enc.dim() == 2 && sae.W_enc.size(0) != dIn)
        throw FormatError(weightsPath, "W_enc has " + std::to_string(sae.W_enc.size(0)) +
                                           " inputs but config.json says d_in " + std::to_string(dIn));
    return sae;
}

// ---- SAELens -----------------------------------------------------------------------------------

std::string saelensHook(const Json& cfg, const std::string& path) {
    if (cfg.contains("metadata") && cfg.at("metadata").is_object() && cfg.at("metadata").contains("hook_name"))
        return configValue<std::string>(cfg.at("metadata"), "hook_name", path);
    if (cfg.contains("hook_name")) return configValue<std::string>(cfg, "hook_name", path);
    return configValue<std::string>(cfg, "hook_point", path);
}

void readSaelensActivation(SparseAutoencoder& sae, const Json& cfg, const std::string& path) {
    std::string arch = cfg.value("architecture", std::string("standard"));
    const std::string fn = cfg.contains("activation_fn_str") ? cfg.value("activation_fn_str", std::string("relu"))
                                                             : cfg.value("activation_fn", std::string("relu"));
    int k = cfg.contains("k") && cfg.at("k").is_number_integer() ? cfg.at("k").get<int>() : 0;
    if (fn == "topk" && cfg.contains("activation_fn_kwargs") && cfg.at("activation_fn_kwargs").contains("k")) {
        arch = "topk";  // handle_pre_6_0_config
        k = cfg.at("activation_fn_kwargs").at("k").get<int>();
    }
    if (arch == "standard" && fn == "relu") {
        sae.activation = SaeActivation::ReLU;
    } else if (arch == "topk") {
        if (k <= 0) throw FormatError(path, "architecture topk without a positive 'k'");
        sae.activation = SaeActivation::TopKReLU;
        sae.k = k;
    } else {
        throw InputError(
            path, "SAELens architecture '" + arch + "' (activation " + fn + ") is not supported (standard relu, topk)");
    }
}

SparseAutoencoder loadSaelens(const fs::path& dir) {
    const std::string cfgPath = (dir / "cfg.json").string(), weights = (dir / "sae_weights.safetensors").string();
    const Json cfg = readJson(cfgPath);
    SparseAutoencoder sae;
    sae.path = weights;
    sae.layout = "saelens";
    sae.hookName = saelensHook(cfg, cfgPath);
    if (cfg.contains("hook_head_index") && !cfg.at("hook_head_index").is_null())
        throw InputError(cfgPath, "reads one head (hook_head_index): no vitscope site");
    sae.layer = mapHookPoint(sae.hookName, cfgPath);
    readSaelensActivation(sae, cfg, cfgPath);
    sae.normalize = parseNormalize(normalizeKey(cfg), cfgPath);
    sae.subtractDecoderBias = cfg.value("apply_b_dec_to_input", true);
    takeStandardWeights(sae, readSafetensorsFloat(weights), weights, "SAELens");
    const int64_t dIn = configValue<int64_t>(cfg, "d_in", cfgPath), dSae = configValue<int64_t>(cfg, "d_sae", cfgPath);
    if (sae.W_enc.dim() != 2 || sae.W_enc.size(0) != dIn || sae.W_enc.size(1) != dSae)
        throw FormatError(weights, "W_enc is not [d_in, d_sae] = [" + std::to_string(dIn) + ", " +
                                       std::to_string(dSae) + "] as cfg.json says");
    if (sae.activation == SaeActivation::TopKReLU && cfg.value("rescale_acts_by_decoder_norm", false) &&
        sae.W_dec.dim() == 2) {
        // TopKSAE.encode: hidden_pre * |W_dec[j]| before the TopK, folded into the encoder.
        const at::Tensor norms = sae.W_dec.norm(2, 1);
        sae.W_enc = sae.W_enc * norms.unsqueeze(0);
        sae.b_enc = sae.b_enc * norms;
    }
    return sae;
}

// ---- MSAE --------------------------------------------------------------------------------------

std::vector<std::string> splitOn(const std::string& s, char c) {
    std::vector<std::string> out;
    std::stringstream in(s);
    for (std::string part; std::getline(in, part, c);) out.push_back(part);
    return out;
}

// MSAE's load_model: the settings from the file name.
void readMsaeName(SparseAutoencoder& sae, const std::string& path) {
    std::string stem = fs::path(path).filename().string();
    stem = stem.substr(0, stem.find(".pt"));
    std::vector<std::string> parts = splitOn(stem, '_');
    std::size_t i = 2;
    const auto next = [&]() -> std::string {
        if (i >= parts.size())
            throw FormatError(path,
                              "is not named as MSAE names its checkpoints "
                              "({latents}_{inputs}_{activation}[_k]_{tied}_{normalize}_{soft_cap}_...)");
        return parts[i++];
    };
    next();
    const std::string act = parts[2];
    if (act == "TopKReLU" || act == "TopK") {
        sae.activation = act == "TopK" ? SaeActivation::TopK : SaeActivation::TopKReLU;
        sae.k = std::stoi(next());
    } else if (act == "ReLU") {
        sae.activation = SaeActivation::ReLU;
        next();
    } else {
        throw InputError(path, "MSAE activation '" + act + "' is not supported (TopKReLU, TopK, ReLU)");
    }
    if (i < parts.size() && (parts[i].find("UW") != std::string::npos || parts[i].find("RW") != std::string::npos)) {
        sae.objective = "matryoshka";
        ++i;
    }
    next();  // tied: read from the weights (no decoder)
    sae.normalize = next() == "False" ? SaeNormalize::None : SaeNormalize::LayerNorm;
    sae.softCap = std::stod(next());
}

// The checkpoint's mean_center [D] (or scalar) and scaling_factor.
void readMsaePreprocessing(SparseAutoencoder& sae, const std::string& path) {
    const MappedFile file(path);
    const TorchFile tf = parseTorchFile(file.data(), file.size(), path);
    const PickleData& p = tf.pickle;
    if (p.at(p.root).kind != PickleKind::Dict)
        throw FormatError(path, "is not an MSAE checkpoint (a dict with model, mean_center, scaling_factor)");
    const uint32_t scale = p.dictGet(p.root, "scaling_factor"), mean = p.dictGet(p.root, "mean_center");
    if (scale == kNoValue) throw FormatError(path, "has no 'scaling_factor' (an MSAE checkpoint)");
    if (mean == kNoValue) throw FormatError(path, "has no 'mean_center' (an MSAE checkpoint)");
    const PickleValue& s = p.at(scale);
    if (s.kind == PickleKind::Float)
        sae.inputScale = s.number;
    else if (s.kind == PickleKind::Int)
        sae.inputScale = static_cast<double>(s.integer);
    else
        throw FormatError(path, "'scaling_factor' is not a number");
    const PickleValue& m = p.at(mean);
    if (m.kind == PickleKind::Tensor) {
        const PickleTensor& t = p.tensors[m.tensor];
        if (t.dtype != StorageDType::F32) throw FormatError(path, "'mean_center' is not float32");
        uint64_t base = 0;
        const TorchStorage& st = tf.storageOf(t, base);
        at::Tensor storage = at::empty({static_cast<int64_t>(t.storageNumel)}, at::kFloat);
        if (t.storageNumel > 0) std::memcpy(storage.data_ptr(), st.data + base * 4, t.storageNumel * 4);
        sae.inputMean = storage.as_strided(t.sizes, t.strides, t.offset).clone();
    } else if (m.kind == PickleKind::Float || m.kind == PickleKind::Int) {
        sae.inputMean =
            at::full({1}, m.kind == PickleKind::Float ? m.number : static_cast<double>(m.integer), at::kFloat);
    } else {
        throw FormatError(path, "'mean_center' is not a tensor or a number");
    }
}

SparseAutoencoder loadMsae(const std::string& path) {
    SparseAutoencoder sae;
    sae.path = path;
    sae.layout = "msae";
    sae.layer = -1;  // MSAE trains on CLIP image embeddings (precompute_activations.py: encode_image)
    readMsaeName(sae, path);
    CheckpointOptions options;
    options.checkpointKey = "model";
    const Checkpoint ck = loadCheckpoint(path, options);
    const std::string needs =
        "an MSAE checkpoint's model holds pre_bias, encoder, latent_bias and decoder (or tied weights)";
    sae.W_enc = takeTensor(ck.tensors, "encoder", path, needs);
    sae.b_enc = takeTensor(ck.tensors, "latent_bias", path, needs);
    sae.b_dec = takeTensor(ck.tensors, "pre_bias", path, needs);
    sae.W_dec =
        ck.tensors.count("decoder") ? takeTensor(ck.tensors, "decoder", path, needs) : sae.W_enc.t().contiguous();
    readMsaePreprocessing(sae, path);
    if (sae.inputMean.numel() == 1 && sae.W_enc.dim() == 2)
        sae.inputMean = sae.inputMean.expand({sae.W_enc.size(0)}).contiguous();
    return sae;
}

// ---- vitscope ----------------------------------------------------------------------------------

std::string metaValue(const std::map<std::string, std::string>& meta, const std::string& key, const std::string& path) {
    const auto it = meta.find(key);
    if (it == meta.end()) throw FormatError(path, "has no metadata '" + key + "' (a vitscope SAE file)");
    return it->second;
}

std::vector<int64_t> parseGroups(const std::string& text, const std::string& path) {
    std::vector<int64_t> out;
    for (const std::string& part : splitOn(text, ',')) {
        if (part.empty()) continue;
        try {
            out.push_back(std::stoll(part));
        } catch (const std::exception&) {
            throw FormatError(path, "metadata groups '" + text + "' is not a list of widths");
        }
    }
    return out;
}

SparseAutoencoder loadVitscope(const std::string& path, const StateDict& sd,
                               const std::map<std::string, std::string>& meta) {
    SparseAutoencoder sae;
    sae.path = path;
    sae.layout = "vitscope";
    sae.metadata = meta;
    if (metaValue(meta, "version", path) != "1")
        throw FormatError(path, "vitscope SAE version " + meta.at("version") + " is not 1");
    sae.layer = parseSaeSite(metaValue(meta, "site", path), path);
    const std::string act = metaValue(meta, "activation", path);
    if (act != "topk" && act != "relu")
        throw FormatError(path, "metadata activation '" + act + "' is not topk or relu");
    sae.activation = act == "topk" ? SaeActivation::TopKReLU : SaeActivation::ReLU;
    try {
        sae.k = std::stoi(metaValue(meta, "k", path));
    } catch (const std::invalid_argument&) {
        throw FormatError(path, "metadata k is not an integer");
    }
    const std::string norm = metaValue(meta, "normalize", path);
    if (norm != "none" && norm != "layer_norm")
        throw FormatError(path, "metadata normalize '" + norm + "' is not none or layer_norm");
    sae.normalize = norm == "layer_norm" ? SaeNormalize::LayerNorm : SaeNormalize::None;
    sae.objective = meta.count("objective") ? meta.at("objective") : "topk";
    sae.groups = parseGroups(meta.count("groups") ? meta.at("groups") : "", path);
    takeStandardWeights(sae, sd, path, "vitscope");
    return sae;
}

SparseAutoencoder loadSaeFile(const std::string& path) {
    const fs::path p(path), dir = p.parent_path().empty() ? fs::path(".") : p.parent_path();
    const std::string ext = p.extension().string();
    if (ext == ".safetensors") {
        std::map<std::string, std::string> meta;
        const StateDict sd = readSafetensorsFloat(path, &meta);
        if (meta.count("format") && meta.at("format") == "vitscope-sae") return loadVitscope(path, sd, meta);
        if (fs::exists(dir / "cfg.json")) return loadSaelens(dir);
        throw FormatError(path,
                          "unknown SAE layout: a safetensors file without format=vitscope-sae metadata and no SAELens "
                          "cfg.json beside it");
    }
    if (ext == ".pt" || ext == ".pth") {
        if (fs::exists(dir / "config.json")) return loadPrisma((dir / "config.json").string(), path);
        return loadMsae(path);
    }
    throw FormatError(path,
                      "unknown SAE layout (a vitscope .safetensors, a ViT-Prisma or SAELens folder, or an MSAE .pth)");
}

}  // namespace

SparseAutoencoder loadSae(const std::string& path) {
    if (!fs::exists(path)) throw IoError(path, "does not exist");
    SparseAutoencoder sae;
    if (fs::is_directory(path)) {
        const fs::path dir(path);
        if (fs::exists(dir / "cfg.json") && fs::exists(dir / "sae_weights.safetensors"))
            sae = loadSaelens(dir);
        else if (fs::exists(dir / "config.json"))
            sae = loadPrisma((dir / "config.json").string(), prismaWeights(dir));
        else
            throw FormatError(path,
                              "unknown SAE layout: the folder has neither config.json (ViT-Prisma) nor cfg.json + "
                              "sae_weights.safetensors (SAELens)");
    } else {
        sae = loadSaeFile(path);
    }
    validateSae(sae);
    return sae;
}

void writeSae(const std::string& path, const SparseAutoencoder& sae) {
    validateSae(sae);
    if (sae.inputMean.defined() || sae.inputScale != 1.0 || sae.softCap != 0.0 || !sae.subtractDecoderBias ||
        sae.normalize == SaeNormalize::ConstantNorm || sae.activation == SaeActivation::TopK)
        throw InputError(path, "vitscope's SAE format has no field for this " + sae.layout + " SAE's settings (" +
                                   sae.describe() + ")");
    std::map<std::string, std::string> meta = sae.metadata;
    meta["format"] = "vitscope-sae";
    meta["version"] = "1";
    meta["site"] = sae.site();
    meta["activation"] = sae.activation == SaeActivation::TopKReLU ? "topk" : "relu";
    meta["k"] = std::to_string(sae.activation == SaeActivation::ReLU ? 0 : sae.k);
    meta["normalize"] = saeNormalizeName(sae.normalize);
    meta["objective"] = sae.objective;
    std::string groups;
    for (int64_t g : sae.groups) groups += (groups.empty() ? "" : ",") + std::to_string(g);
    meta["groups"] = groups;
    for (const char* key : {"model", "seed", "steps"})
        if (!meta.count(key)) meta[key] = "";
    writeSafetensorsTensors(path,
                            {{"W_enc", sae.W_enc.contiguous()},
                             {"b_enc", sae.b_enc.contiguous()},
                             {"W_dec", sae.W_dec.contiguous()},
                             {"b_dec", sae.b_dec.contiguous()}},
                            meta);
}

}  // namespace vitscope
