#include "io/checkpoint.h"

#include "error.h"
#include "io/file_util.h"
#include "io/torch_file.h"
#include "io/zip_archive.h"

#include <nlohmann/json.hpp>
#include <torch/script.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>

namespace fs = std::filesystem;

namespace vitscope {

namespace {

// A tensor as read, before names are normalised.
struct NamedTensor {
    std::string name;
    at::Tensor tensor;
};

bool endsWith(const std::string& s, const char* suffix) {
    const std::size_t n = std::strlen(suffix);
    return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// TorchScript archives carry code/ and constants.pkl beside data.pkl.
bool isTorchScript(const ZipArchive& zip) {
    for (const ZipEntry& e : zip.entries)
        if (endsWith(e.name, "/constants.pkl") || e.name.find("/code/") != std::string::npos) return true;
    return false;
}

at::Tensor toFloatIfFloating(const at::Tensor& t) {
    at::Tensor c = t.detach().to(at::kCPU);
    if (at::isFloatingType(c.scalar_type())) c = c.to(at::kFloat);
    return c.contiguous();
}

// ---- torch.save files ----------------------------------------------------------------------

bool scalarTypeOf(StorageDType d, at::ScalarType& out) {
    switch (d) {
    case StorageDType::F32: out = at::kFloat; return true;
    case StorageDType::F16: out = at::kHalf; return true;
    case StorageDType::BF16: out = at::kBFloat16; return true;
    case StorageDType::F64: out = at::kDouble; return true;
    case StorageDType::I64: out = at::kLong; return true;
    case StorageDType::I32: out = at::kInt; return true;
    case StorageDType::I16: out = at::kShort; return true;
    case StorageDType::I8: out = at::kChar; return true;
    case StorageDType::U8: out = at::kByte; return true;
    case StorageDType::Bool: out = at::kByte; return true;  // read as bytes, then compared with 0
    case StorageDType::C64: case StorageDType::C128: return false;
    }
    return false;
}

// Copies one validated tensor view out of the mapped file (float types become float32).
at::Tensor materialise(const TorchFile& tf, const PickleTensor& t, at::ScalarType type) {
    uint64_t base = 0;
    const TorchStorage& s = tf.storageOf(t, base);
    const std::size_t elem = storageDTypeSize(t.dtype);
    const uint8_t* ptr = s.data + base * elem;
    const auto n = static_cast<int64_t>(t.storageNumel);
    at::Tensor storage;
    if (reinterpret_cast<uintptr_t>(ptr) % elem == 0) {
        storage = at::from_blob(const_cast<uint8_t*>(ptr), {n}, at::TensorOptions().dtype(type));
    } else {  // the legacy format does not align its storages
        storage = at::empty({n}, at::TensorOptions().dtype(type));
        if (n > 0) std::memcpy(storage.data_ptr(), ptr, static_cast<std::size_t>(n) * elem);
    }
    const at::Tensor view = storage.as_strided(t.sizes, t.strides, t.offset);
    const bool floating = at::isFloatingType(type);
    at::Tensor out = at::empty(t.sizes, at::TensorOptions().dtype(floating ? at::kFloat : type));
    out.copy_(view);
    if (t.dtype == StorageDType::Bool) out = out.ne(0);
    return out;
}

// Wrapper searches look at this many entries of a dict at most: values shared through the memo
// could otherwise make a small hostile file cost (entries)^depth steps.
constexpr std::size_t kMaxWrapperEntries = 4096;

// A dict value counts as a state dict when it maps strings to tensors (at least half its entries).
// Answers are cached per value (`cache`: -1 unknown, 0 no, 1 yes).
bool isStateDict(const PickleData& p, uint32_t v, std::vector<int8_t>& cache) {
    if (v >= p.values.size() || p.at(v).kind != PickleKind::Dict) return false;
    if (cache[v] >= 0) return cache[v] == 1;
    const auto& items = p.at(v).items;
    std::size_t tensors = 0;
    for (std::size_t i = 0; i + 1 < items.size(); i += 2)
        if (p.stringAt(items[i]) && p.at(items[i + 1]).kind == PickleKind::Tensor) ++tensors;
    const bool yes = tensors > 0 && 2 * tensors >= items.size() / 2;
    cache[v] = yes ? 1 : 0;
    return yes;
}

bool holdsStateDict(const PickleData& p, uint32_t v, int depth, std::vector<int8_t>& cache) {
    if (isStateDict(p, v, cache)) return true;
    if (depth == 0 || v >= p.values.size() || p.at(v).kind != PickleKind::Dict) return false;
    const auto& items = p.at(v).items;
    for (std::size_t i = 0; i + 1 < items.size() && i / 2 < kMaxWrapperEntries; i += 2)
        if (p.stringAt(items[i]) && holdsStateDict(p, items[i + 1], depth - 1, cache)) return true;
    return false;
}

// Keys of a wrapper dict whose values hold a state dict, in file order, without repeats.
std::vector<std::string> wrapperCandidates(const PickleData& p, uint32_t dict, std::vector<int8_t>& cache) {
    std::vector<std::string> out;
    const auto& items = p.at(dict).items;
    for (std::size_t i = 0; i + 1 < items.size() && i / 2 < kMaxWrapperEntries; i += 2) {
        const std::string* key = p.stringAt(items[i]);
        if (key && holdsStateDict(p, items[i + 1], 2, cache) && std::find(out.begin(), out.end(), *key) == out.end())
            out.push_back(*key);
    }
    return out;
}

std::string joined(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
    return out.empty() ? "none" : out;
}

// Walks from the file's root object to the state dict, recording the keys taken.
uint32_t findStateDict(const PickleData& p, const CheckpointOptions& options, Checkpoint& ck) {
    std::vector<int8_t> cache(p.values.size(), -1);
    uint32_t v = p.root;
    for (int depth = 0; depth < 3 && !isStateDict(p, v, cache); ++depth) {
        if (p.at(v).kind != PickleKind::Dict)
            throw FormatError(ck.path, "the file does not hold a state dict (a dict of tensors)");
        const std::vector<std::string> candidates = wrapperCandidates(p, v, cache);
        if (depth == 0) ck.wrapperCandidates = candidates;
        std::string key;
        if (depth == 0 && !options.checkpointKey.empty()) {
            key = options.checkpointKey;
            if (std::find(candidates.begin(), candidates.end(), key) == candidates.end())
                throw InputError(ck.path, "checkpoint key '" + key + "' does not hold a state dict (keys that do: " +
                                              joined(candidates) + ")");
        } else {
            for (const std::string& k : checkpointWrapperKeys())
                if (key.empty() && std::find(candidates.begin(), candidates.end(), k) != candidates.end()) key = k;
            if (key.empty() && !candidates.empty()) key = candidates.front();
        }
        if (key.empty()) throw FormatError(ck.path, "the file holds no state dict (no dict of tensors under any key)");
        ck.wrapperKey += (ck.wrapperKey.empty() ? "" : "/") + key;
        v = p.dictGet(v, key);
    }
    if (!isStateDict(p, v, cache)) throw FormatError(ck.path, "the file does not hold a state dict (a dict of tensors)");
    if (!options.checkpointKey.empty() && ck.wrapperKey.empty())
        throw InputError(ck.path, "--checkpoint-key given, but the file is a plain state dict");
    return v;
}

std::vector<NamedTensor> readTorchFile(const TorchFile& tf, const CheckpointOptions& options, Checkpoint& ck) {
    ck.format = tf.format == TorchFile::Format::Zip ? CheckpointFormat::TorchPickle : CheckpointFormat::TorchLegacy;
    const PickleData& p = tf.pickle;
    const uint32_t dict = findStateDict(p, options, ck);
    std::vector<NamedTensor> out;
    const auto& items = p.at(dict).items;
    for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
        const std::string* name = p.stringAt(items[i]);
        if (!name) continue;
        const PickleValue& value = p.at(items[i + 1]);
        if (value.kind != PickleKind::Tensor) {
            ck.ignored.push_back(*name + " (not a tensor)");
            continue;
        }
        const PickleTensor& t = p.tensors[value.tensor];
        at::ScalarType type;
        if (!scalarTypeOf(t.dtype, type)) {
            ck.ignored.push_back(*name + " (" + storageDTypeName(t.dtype) + ")");
            continue;
        }
        ck.storedDTypes[storageDTypeName(t.dtype)]++;
        out.push_back({*name, materialise(tf, t, type)});
    }
    return out;
}

// ---- safetensors, TorchScript ----------------------------------------------------------------

// The same spelling as torch files' dtypes ("float32", "bfloat16", ...).
const char* safetensorsDTypeName(DType d) {
    switch (d) {
    case DType::F32: return "float32";
    case DType::F16: return "float16";
    case DType::BF16: return "bfloat16";
    case DType::F64: return "float64";
    case DType::I64: return "int64";
    case DType::I32: return "int32";
    case DType::U8: return "uint8";
    }
    return "?";
}

std::vector<NamedTensor> readSafetensorsBytes(const uint8_t* bytes, std::size_t size, Checkpoint& ck,
                                              const std::string& where) {
    const SafetensorsView view = parseSafetensors(bytes, size, where);
    std::vector<NamedTensor> out;
    for (const auto& entry : view.entries) {
        ck.storedDTypes[safetensorsDTypeName(entry.dtype)]++;
        out.push_back({entry.name, toFloatIfFloating(entryToTensor(view, entry))});
    }
    return out;
}

std::vector<NamedTensor> readTorchScript(const std::string& path) {
    try {
        torch::jit::Module module = torch::jit::load(path, torch::kCPU);
        std::vector<NamedTensor> out;
        for (const auto& p : module.named_parameters(true)) out.push_back({p.name, toFloatIfFloating(p.value)});
        for (const auto& b : module.named_buffers(true)) out.push_back({b.name, toFloatIfFloating(b.value)});
        if (out.empty()) throw FormatError(path, "TorchScript archive holds no parameters");
        return out;
    } catch (const c10::Error& e) {
        throw FormatError(path, std::string("cannot read TorchScript archive: ") + e.what_without_backtrace());
    }
}

// One file of any supported format.
std::vector<NamedTensor> readOneFile(const std::string& path, const CheckpointOptions& options, Checkpoint& ck) {
    MappedFile file(path);
    if (file.size() == 0) throw FormatError(path, "file is empty");
    const uint8_t* b = file.data();
    const std::size_t n = file.size();
    if (looksLikeZip(b, n)) {
        const ZipArchive zip = parseZip(b, n, path);  // the central directory, read once
        if (isTorchScript(zip)) {
            ck.format = CheckpointFormat::TorchScript;
            return readTorchScript(path);
        }
        return readTorchFile(parseTorchZip(zip, path), options, ck);
    }
    // Safetensors first: its header length is any u64, so its first byte may be 0x80 (a header of
    // 128, 384... bytes), pickle's PROTO opcode; a legacy torch file never has '{' at byte 8.
    if ((n >= 9 && b[8] == '{') || (b[0] != 0x80 && endsWith(path, ".safetensors"))) {
        ck.format = CheckpointFormat::Safetensors;
        return readSafetensorsBytes(b, n, ck, path);
    }
    if (b[0] == 0x80) return readTorchFile(parseTorchFile(b, n, path), options, ck);
    throw FormatError(path, "not a checkpoint (expected safetensors, a torch.save file or a TorchScript archive)");
}

// A sharded checkpoint: the index's weight_map names, for every tensor, the shard holding it.
std::vector<NamedTensor> readSharded(const std::string& indexPath, const CheckpointOptions& options, Checkpoint& ck) {
    const nlohmann::json index = nlohmann::json::parse(readFileText(indexPath), nullptr, false);
    if (index.is_discarded() || !index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
        throw FormatError(indexPath, "shard index is not JSON with a \"weight_map\" object");
    std::map<std::string, std::set<std::string>> byShard;
    for (const auto& [name, shard] : index["weight_map"].items()) {
        if (!shard.is_string()) throw FormatError(indexPath, "weight_map entry '" + name + "' is not a file name");
        const std::string file = shard.get<std::string>();
        if (file.empty() || file.find('/') != std::string::npos || file.find('\\') != std::string::npos || file == "..")
            throw FormatError(indexPath, "weight_map names a file outside its directory: '" + file + "'");
        byShard[file].insert(name);
    }
    if (byShard.empty()) throw FormatError(indexPath, "shard index names no tensors");
    const fs::path dir = fs::path(indexPath).parent_path();
    for (const auto& [file, names] : byShard) {
        std::error_code ec;
        if (!fs::is_regular_file(dir / file, ec))
            throw IoError(indexPath, "shard file '" + file + "' is missing (" + std::to_string(byShard.size()) + " shards listed)");
    }
    std::vector<NamedTensor> out;
    CheckpointFormat format = CheckpointFormat::Safetensors;
    for (const auto& [file, names] : byShard) {
        Checkpoint shard;
        shard.path = (dir / file).string();
        std::vector<NamedTensor> tensors = readOneFile(shard.path, options, shard);
        format = shard.format;
        for (const auto& [dtype, count] : shard.storedDTypes) ck.storedDTypes[dtype] += count;
        std::set<std::string> seen;
        for (NamedTensor& t : tensors) {
            if (!names.count(t.name)) continue;  // the index is authoritative
            seen.insert(t.name);
            out.push_back(std::move(t));
        }
        for (const std::string& name : names)
            if (!seen.count(name)) throw FormatError(shard.path, "shard lacks tensor '" + name + "' that its index assigns to it");
    }
    ck.format = format;
    ck.shards = static_cast<int>(byShard.size());
    return out;
}

// Strips wrapper prefixes ("module.", "_orig_mod.", then "backbone.") and keeps one name each.
void normaliseNames(std::vector<NamedTensor>& tensors, Checkpoint& ck) {
    static const char* kWrappers[] = {"module.", "_orig_mod."};
    auto strip = [](std::string& name, const char* prefix) {
        if (name.rfind(prefix, 0) != 0) return false;
        name.erase(0, std::strlen(prefix));
        return true;
    };
    std::set<std::string> stripped;
    bool backbone = false;
    for (NamedTensor& t : tensors) {
        for (bool again = true; again;) {
            again = false;
            for (const char* p : kWrappers)
                if (strip(t.name, p)) {
                    stripped.insert(p);
                    again = true;
                }
        }
        backbone = backbone || t.name.rfind("backbone.", 0) == 0;
    }
    for (const char* p : kWrappers)
        if (stripped.count(p)) ck.strippedPrefix += p;
    if (backbone) ck.strippedPrefix += "backbone.";
    for (NamedTensor& t : tensors) {
        if (backbone && !strip(t.name, "backbone.")) {
            ck.ignored.push_back(t.name + " (outside the backbone)");
            continue;
        }
        ck.tensors[t.name] = std::move(t.tensor);
    }
}

}  // namespace

const std::vector<std::string>& checkpointWrapperKeys() {
    static const std::vector<std::string> kKeys{"state_dict", "model", "teacher", "model_state_dict",
                                                "module", "state_dict_ema", "model_ema", "student"};
    return kKeys;
}

const char* checkpointFormatName(CheckpointFormat format) {
    switch (format) {
    case CheckpointFormat::Safetensors: return "safetensors";
    case CheckpointFormat::TorchPickle: return "torch-zip";
    case CheckpointFormat::TorchLegacy: return "torch-legacy";
    case CheckpointFormat::TorchScript: return "torchscript";
    }
    return "?";
}

Checkpoint loadCheckpoint(const std::string& path, const CheckpointOptions& options) {
    Checkpoint ck;
    ck.path = path;
    std::vector<NamedTensor> tensors =
        endsWith(path, ".index.json") ? readSharded(path, options, ck) : readOneFile(path, options, ck);
    if (!options.checkpointKey.empty() && ck.format != CheckpointFormat::TorchPickle &&
        ck.format != CheckpointFormat::TorchLegacy)
        throw InputError(path, "--checkpoint-key applies to torch.save files only");
    normaliseNames(tensors, ck);
    if (ck.tensors.empty()) throw FormatError(path, "checkpoint holds no tensors");
    return ck;
}

}  // namespace vitscope
