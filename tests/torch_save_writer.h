#pragma once
// Writes torch.save-format bytes (zip and legacy) by hand, following torch's serialization
// format, for tests and fuzz seeds that need configurations the oracle files do not hold:
// storages shared by several tensors, views with offsets and strides, other dtypes, hostile
// records. Torch-free and header-only (the fuzz driver links no torch).
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace vitscope::test {

// Emits pickle opcodes (protocol 2, as torch.save writes).
class PickleWriter {
public:
    PickleWriter() { m_out += "\x80\x02"; }
    PickleWriter& op(char c) { m_out += c; return *this; }
    PickleWriter& mark() { return op('('); }
    PickleWriter& str(const std::string& s) {
        op('X');
        le(s.size(), 4);
        m_out += s;
        return *this;
    }
    PickleWriter& integer(int64_t v) {
        if (v >= 0 && v < 256) {
            op('K');
            le(static_cast<uint64_t>(v), 1);
        } else if (v >= INT32_MIN && v <= INT32_MAX) {
            op('J');
            le(static_cast<uint32_t>(static_cast<int32_t>(v)), 4);
        } else {
            op('\x8a');
            m_out += '\x08';
            le(static_cast<uint64_t>(v), 8);
        }
        return *this;
    }
    PickleWriter& global(const std::string& module, const std::string& name) {
        m_out += 'c' + module + '\n' + name + '\n';
        return *this;
    }
    PickleWriter& intTuple(const std::vector<int64_t>& v) {
        mark();
        for (int64_t x : v) integer(x);
        return op('t');
    }
    PickleWriter& raw(const std::string& bytes) {
        m_out += bytes;
        return *this;
    }
    std::string finish() { return m_out + '.'; }

private:
    void le(uint64_t v, int n) {
        for (int i = 0; i < n; ++i) m_out += static_cast<char>((v >> (8 * i)) & 0xFF);
    }
    std::string m_out;
};

struct FakeTensor {
    std::string key;                           // storage key
    std::string storageType = "FloatStorage";  // torch.<storageType>
    int64_t storageNumel = 0;
    int64_t offset = 0;
    std::vector<int64_t> sizes, strides;
};

// One _rebuild_tensor_v2 record; `legacy` adds the legacy format's view_metadata (None).
inline void writeTensor(PickleWriter& w, const FakeTensor& t, bool legacy) {
    w.global("torch._utils", "_rebuild_tensor_v2").mark();
    w.mark().str("storage").global("torch", t.storageType).str(t.key).str("cpu").integer(t.storageNumel);
    if (legacy) w.op('N');
    w.op('t').op('Q');
    w.integer(t.offset).intTuple(t.sizes).intTuple(t.strides).op('\x89');
    w.global("collections", "OrderedDict").op(')').op('R');
    w.op('t').op('R');
}

// torch.save(state_dict): an OrderedDict of tensors, then BUILD with its _metadata.
inline std::string stateDictPickle(const std::vector<std::pair<std::string, FakeTensor>>& tensors, bool legacy = false) {
    PickleWriter w;
    w.global("collections", "OrderedDict").op(')').op('R').mark();
    for (const auto& [name, t] : tensors) {
        w.str(name);
        writeTensor(w, t, legacy);
    }
    w.op('u');
    w.global("collections", "OrderedDict").op(')').op('R');  // _metadata (empty here)
    w.op('b');                                                // BUILD
    return w.finish();
}

// A zip archive of stored entries (CRCs left zero: the reader under test does not use them).
inline std::vector<uint8_t> zipStored(const std::vector<std::pair<std::string, std::string>>& entries) {
    std::string out, central;
    auto le = [](std::string& s, uint64_t v, int n) {
        for (int i = 0; i < n; ++i) s += static_cast<char>((v >> (8 * i)) & 0xFF);
    };
    for (const auto& [name, data] : entries) {
        const std::size_t local = out.size();
        le(out, 0x04034b50, 4);
        le(out, 20, 2);
        le(out, 0, 2);
        le(out, 0, 2);  // stored
        le(out, 0, 4);
        le(out, 0, 4);  // crc
        le(out, data.size(), 4);
        le(out, data.size(), 4);
        le(out, name.size(), 2);
        // Pad so that the data starts on a 64-byte boundary, as torch does.
        const std::size_t unpadded = out.size() + 2 + name.size();
        const std::size_t pad = (64 - (unpadded + 4) % 64) % 64 + 4;
        le(out, pad, 2);
        out += name;
        le(out, 0x1234, 2);
        le(out, pad - 4, 2);
        out += std::string(pad - 4, 'Z');
        out += data;
        le(central, 0x02014b50, 4);
        le(central, 20, 2);
        le(central, 20, 2);
        le(central, 0, 2);
        le(central, 0, 2);
        le(central, 0, 4);
        le(central, 0, 4);
        le(central, data.size(), 4);
        le(central, data.size(), 4);
        le(central, name.size(), 2);
        le(central, 0, 2);
        le(central, 0, 2);
        le(central, 0, 2);
        le(central, 0, 2);
        le(central, 0, 4);
        le(central, local, 4);
        central += name;
    }
    const std::size_t cdOffset = out.size();
    out += central;
    le(out, 0x06054b50, 4);
    le(out, 0, 2);
    le(out, 0, 2);
    le(out, entries.size(), 2);
    le(out, entries.size(), 2);
    le(out, central.size(), 4);
    le(out, cdOffset, 4);
    le(out, 0, 2);
    return std::vector<uint8_t>(out.begin(), out.end());
}

// A zip-format torch file: ARCHIVE/data.pkl, ARCHIVE/data/KEY, ARCHIVE/version.
inline std::vector<uint8_t> torchZip(const std::string& pickle, const std::map<std::string, std::string>& storages,
                                     const std::string& archive = "archive") {
    std::vector<std::pair<std::string, std::string>> entries{{archive + "/data.pkl", pickle}};
    for (const auto& [key, bytes] : storages) entries.emplace_back(archive + "/data/" + key, bytes);
    entries.emplace_back(archive + "/version", "3\n");
    return zipStored(entries);
}

// A legacy-format torch file: magic, protocol 1001, sys info, the object pickle, the storage
// keys, then each storage as int64 numel + raw bytes.
inline std::vector<uint8_t> torchLegacy(const std::string& pickle,
                                        const std::vector<std::pair<std::string, std::string>>& storages,
                                        const std::vector<std::size_t>& elementSizes) {
    std::string out;
    out += std::string("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 15);
    out += PickleWriter().integer(1001).finish();
    out += PickleWriter().op('}').mark().str("protocol_version").integer(1001).str("little_endian").op('\x88').op('u').finish();
    out += pickle;
    PickleWriter keys;
    keys.op(']').mark();
    for (const auto& s : storages) keys.str(s.first);
    keys.op('e');
    out += keys.finish();
    for (std::size_t i = 0; i < storages.size(); ++i) {
        const uint64_t numel = storages[i].second.size() / elementSizes[i];
        for (int b = 0; b < 8; ++b) out += static_cast<char>((numel >> (8 * b)) & 0xFF);
        out += storages[i].second;
    }
    return std::vector<uint8_t>(out.begin(), out.end());
}

inline std::string floatBytes(const std::vector<float>& v) {
    return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

}  // namespace vitscope::test
