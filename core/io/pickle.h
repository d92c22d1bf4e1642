#pragma once
// A restricted Python pickle reader (protocols 0-5) for checkpoint files. It never runs
// anything: globals are names, and calling one builds a value only for the few callables real
// checkpoints use (OrderedDict, torch's tensor rebuild functions, set, ...). Any other callable
// becomes an opaque Object that fails only if a tensor is needed from it; callables that run
// code or touch the system in Python (os / posix.system, subprocess, eval, ...) are refused.
// Torch-free and fuzzed on its own; memory and nesting are bounded by the input size.
//
//   const PickleData p = readPickle(bytes, size, "model.pth");
//   const PickleValue& root = p.at(p.root);
//   if (root.kind == PickleKind::Dict) for (size_t i = 0; i + 1 < root.items.size(); i += 2) ...
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vitscope {

enum class PickleKind {
    None, Bool, Int, BigInt, Float, String, Bytes, List, Tuple, Dict, Set,
    Global,   // text = "module.name"
    Object,   // text = the callable's name; items = {args}; state = BUILD state (or kNoValue)
    PersId,   // a persistent id; items = {the id value}
    Tensor,   // torch._utils._rebuild_tensor(_v2); see PickleTensor
};

// Element types of torch storages ("torch.FloatStorage" ...).
enum class StorageDType { F32, F16, BF16, F64, I64, I32, I16, I8, U8, Bool, C64, C128 };
std::size_t storageDTypeSize(StorageDType t);
const char* storageDTypeName(StorageDType t);  // "float32", "float16", ...
bool storageDTypeFromName(const std::string& global, StorageDType& out);  // "torch.HalfStorage" -> F16

struct PickleTensor {
    std::string storageKey;
    StorageDType dtype = StorageDType::F32;
    uint64_t storageNumel = 0;  // elements, as the persistent id states
    // Legacy format only: the storage is a view (view_metadata) of `viewRoot` at `viewOffset`
    // elements; empty viewRoot when it is a root storage.
    std::string viewRoot;
    uint64_t viewOffset = 0;
    int64_t offset = 0;            // storage offset in elements
    std::vector<int64_t> sizes, strides;
};

struct PickleValue {
    PickleKind kind = PickleKind::None;
    bool boolean = false;
    int64_t integer = 0;
    double number = 0;
    std::string text;             // String, Bytes, Global, Object (callable), BigInt (raw bytes)
    std::vector<uint32_t> items;  // List / Tuple / Set elements; Dict: key, value, key, value...
    uint32_t state = 0xFFFFFFFFu;   // Object: BUILD state, else kNoValue
    uint32_t tensor = 0xFFFFFFFFu;  // Tensor: index into PickleData::tensors
};

constexpr uint32_t kNoValue = 0xFFFFFFFFu;

struct PickleData {
    std::vector<PickleValue> values;  // arena; values refer to each other by index
    std::vector<PickleTensor> tensors;
    uint32_t root = kNoValue;
    std::size_t consumed = 0;  // bytes read up to and including STOP

    const PickleValue& at(uint32_t i) const { return values.at(i); }
    // The string of a String value, or nullptr.
    const std::string* stringAt(uint32_t i) const;
    // Dict lookup by string key (last write wins, as in Python); kNoValue when absent.
    uint32_t dictGet(uint32_t dict, const std::string& key) const;
};

// Reads one pickle from `size` bytes (stopping at its STOP opcode). Throws FormatError naming
// `where` on malformed input and for a refused callable.
PickleData readPickle(const uint8_t* bytes, std::size_t size, const std::string& where);

}  // namespace vitscope
