#include "io/torch_file.h"

#include "error.h"
#include "io/zip_archive.h"

#include <cstring>

namespace vitscope {

namespace {

// torch's legacy magic number 0x1950a86a20f9469cfc6c, as pickle's little-endian LONG1 bytes.
const std::string kLegacyMagic("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10);
constexpr int64_t kLegacyProtocol = 1001;

bool bytesFit(uint64_t numel, std::size_t elemSize, uint64_t available) {
    return numel <= available / elemSize;
}

// Checks every tensor against the storages read from the file.
void checkTensors(const TorchFile& tf, const std::string& where) {
    for (const PickleTensor& t : tf.pickle.tensors) {
        const std::string& key = t.viewRoot.empty() ? t.storageKey : t.viewRoot;
        auto it = tf.storages.find(key);
        if (it == tf.storages.end()) throw FormatError(where, "tensor storage '" + key + "' is missing from the file");
        const TorchStorage& s = it->second;
        if (s.dtype != t.dtype)
            throw FormatError(where, "storage '" + key + "' is read as both " + storageDTypeName(s.dtype) + " and " +
                                         storageDTypeName(t.dtype));
        if (t.viewOffset > s.numel || t.storageNumel > s.numel - t.viewOffset)
            throw FormatError(where, "storage '" + key + "' holds " + std::to_string(s.numel) + " elements, fewer than its id states (" +
                                         std::to_string(t.viewOffset + t.storageNumel) + ")");
    }
}

}  // namespace

TorchFile parseTorchZip(const ZipArchive& zip, const std::string& where) {
    const ZipEntry* pkl = nullptr;
    for (const ZipEntry& e : zip.entries) {
        const auto slash = e.name.find('/');
        if (slash != std::string::npos && e.name.compare(slash, std::string::npos, "/data.pkl") == 0) {
            pkl = &e;
            break;
        }
    }
    if (!pkl) throw FormatError(where, "zip archive has no ARCHIVE/data.pkl (not a torch.save file)");
    requireStored(*pkl, where);
    const std::string prefix = pkl->name.substr(0, pkl->name.size() - std::strlen("data.pkl"));
    if (const ZipEntry* order = zip.find(prefix + "byteorder"); order && order->stored) {
        const std::string text(reinterpret_cast<const char*>(zip.bytes(*order)), order->size);
        if (text.rfind("big", 0) == 0) throw FormatError(where, "big-endian torch files are not supported");
    }
    TorchFile tf;
    tf.format = TorchFile::Format::Zip;
    tf.pickle = readPickle(zip.bytes(*pkl), pkl->size, where);
    std::map<std::string, const ZipEntry*> records;
    for (const ZipEntry& e : zip.entries)
        if (e.name.compare(0, prefix.size() + 5, prefix + "data/") == 0) records[e.name.substr(prefix.size() + 5)] = &e;
    for (const PickleTensor& t : tf.pickle.tensors) {
        if (!t.viewRoot.empty()) throw FormatError(where, "storage views are not expected in a zip torch file");
        if (tf.storages.count(t.storageKey)) continue;
        auto it = records.find(t.storageKey);
        if (it == records.end()) throw FormatError(where, "tensor storage record '" + prefix + "data/" + t.storageKey + "' is missing");
        requireStored(*it->second, where);
        const std::size_t elem = storageDTypeSize(t.dtype);
        TorchStorage s;
        s.dtype = t.dtype;
        s.data = zip.bytes(*it->second);
        s.numel = it->second->size / elem;
        if (!bytesFit(t.storageNumel, elem, it->second->size))
            throw FormatError(where, "storage record '" + it->second->name + "' holds " + std::to_string(it->second->size) +
                                         " bytes, fewer than its " + std::to_string(t.storageNumel) + " " +
                                         storageDTypeName(t.dtype) + " elements");
        tf.storages[t.storageKey] = s;
    }
    checkTensors(tf, where);
    return tf;
}

namespace {

// Storage key -> element type, from every persistent id in the object pickle.
std::map<std::string, StorageDType> storageTypes(const PickleData& p) {
    std::map<std::string, StorageDType> types;
    for (const PickleTensor& t : p.tensors) types[t.viewRoot.empty() ? t.storageKey : t.viewRoot] = t.dtype;
    for (const PickleValue& v : p.values) {
        if (v.kind != PickleKind::PersId || v.items.empty()) continue;
        const PickleValue& id = p.at(v.items[0]);
        if (id.kind != PickleKind::Tuple || id.items.size() < 5) continue;
        const std::string* key = p.stringAt(id.items[2]);
        const PickleValue& type = p.at(id.items[1]);
        StorageDType dtype;
        if (key && type.kind == PickleKind::Global && storageDTypeFromName(type.text, dtype) && !types.count(*key))
            types[*key] = dtype;
    }
    return types;
}

TorchFile parseLegacyFile(const uint8_t* bytes, std::size_t size, const std::string& where) {
    std::size_t pos = 0;
    auto next = [&]() {
        PickleData p = readPickle(bytes + pos, size - pos, where);
        pos += p.consumed;
        return p;
    };
    const PickleData magic = next();
    if (magic.at(magic.root).kind != PickleKind::BigInt || magic.at(magic.root).text != kLegacyMagic)
        throw FormatError(where, "not a torch.save file (legacy magic number missing)");
    const PickleData protocol = next();
    if (protocol.at(protocol.root).kind != PickleKind::Int || protocol.at(protocol.root).integer != kLegacyProtocol)
        throw FormatError(where, "unsupported legacy torch protocol version");
    const PickleData sysInfo = next();
    const uint32_t little = sysInfo.dictGet(sysInfo.root, "little_endian");
    if (little != kNoValue && sysInfo.at(little).kind == PickleKind::Bool && !sysInfo.at(little).boolean)
        throw FormatError(where, "big-endian torch files are not supported");
    TorchFile tf;
    tf.format = TorchFile::Format::Legacy;
    tf.pickle = next();
    const PickleData keys = next();
    const PickleValue& list = keys.at(keys.root);
    if (list.kind != PickleKind::List) throw FormatError(where, "legacy torch file's storage key list is malformed");
    const std::map<std::string, StorageDType> types = storageTypes(tf.pickle);
    for (uint32_t k : list.items) {
        const std::string* key = keys.stringAt(k);
        if (!key) throw FormatError(where, "legacy torch file's storage key list is malformed");
        auto type = types.find(*key);
        if (type == types.end()) throw FormatError(where, "legacy storage '" + *key + "' is not referenced by the file's objects");
        if (size - pos < 8) throw FormatError(where, "legacy torch file is truncated (storage '" + *key + "')");
        uint64_t numel = 0;
        for (int i = 7; i >= 0; --i) numel = (numel << 8) | bytes[pos + static_cast<std::size_t>(i)];
        pos += 8;
        const std::size_t elem = storageDTypeSize(type->second);
        if (!bytesFit(numel, elem, size - pos))
            throw FormatError(where, "legacy torch file is truncated (storage '" + *key + "' needs " + std::to_string(numel) +
                                         " elements)");
        TorchStorage s;
        s.dtype = type->second;
        s.data = bytes + pos;
        s.numel = numel;
        tf.storages[*key] = s;
        pos += static_cast<std::size_t>(numel * elem);
    }
    checkTensors(tf, where);
    return tf;
}

}  // namespace

const TorchStorage& TorchFile::storageOf(const PickleTensor& t, uint64_t& elementOffset) const {
    elementOffset = t.viewRoot.empty() ? 0 : t.viewOffset;
    return storages.at(t.viewRoot.empty() ? t.storageKey : t.viewRoot);
}

bool looksLikeLegacyTorch(const uint8_t* bytes, std::size_t size) {
    // PROTO 2, LONG1 of 10 bytes, then the magic number.
    return size >= 14 && bytes[0] == 0x80 && bytes[2] == 0x8a && bytes[3] == 10 &&
           std::memcmp(bytes + 4, kLegacyMagic.data(), 10) == 0;
}

TorchFile parseTorchFile(const uint8_t* bytes, std::size_t size, const std::string& where) {
    if (looksLikeZip(bytes, size)) return parseTorchZip(parseZip(bytes, size, where), where);
    if (size > 0 && bytes[0] == 0x80) return parseLegacyFile(bytes, size, where);
    throw FormatError(where, "not a torch.save file (neither a zip archive nor a legacy pickle)");
}

}  // namespace vitscope
