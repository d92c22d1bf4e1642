#include "io/zip_archive.h"

#include "error.h"

namespace vitscope {

namespace {

constexpr uint32_t kLocalSig = 0x04034b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kEnd64Sig = 0x06064b50;
constexpr uint32_t kEnd64LocatorSig = 0x07064b50;
constexpr std::size_t kEndSize = 22;
constexpr std::size_t kCentralSize = 46;
constexpr std::size_t kLocalSize = 30;

// Little-endian reads at a position already checked to lie inside the span.
class Reader {
public:
    Reader(const uint8_t* bytes, std::size_t size, const std::string& where) : m_b(bytes), m_size(size), m_where(where) {}

    void need(std::size_t pos, std::size_t n, const char* what) const {
        if (pos > m_size || n > m_size - pos) throw FormatError(m_where, std::string("zip archive is truncated (") + what + ")");
    }
    uint64_t le(std::size_t pos, int n) const {
        uint64_t v = 0;
        for (int i = n - 1; i >= 0; --i) v = (v << 8) | m_b[pos + static_cast<std::size_t>(i)];
        return v;
    }
    uint16_t u16(std::size_t pos) const { return static_cast<uint16_t>(le(pos, 2)); }
    uint32_t u32(std::size_t pos) const { return static_cast<uint32_t>(le(pos, 4)); }
    uint64_t u64(std::size_t pos) const { return le(pos, 8); }
    std::size_t size() const { return m_size; }
    const uint8_t* bytes() const { return m_b; }
    const std::string& where() const { return m_where; }

private:
    const uint8_t* m_b;
    std::size_t m_size;
    const std::string& m_where;
};

std::size_t findEnd(const Reader& r) {
    if (r.size() < kEndSize) throw FormatError(r.where(), "zip archive is truncated (no end of central directory)");
    const std::size_t last = r.size() - kEndSize;
    const std::size_t first = last > 65535 ? last - 65535 : 0;
    for (std::size_t pos = last + 1; pos-- > first;) {
        if (r.u32(pos) == kEndSig && pos + kEndSize + r.u16(pos + 20) <= r.size()) return pos;
    }
    throw FormatError(r.where(), "zip archive is truncated (no end of central directory)");
}

struct Directory {
    uint64_t entries = 0, offset = 0, size = 0;
};

Directory readDirectory(const Reader& r, std::size_t end) {
    Directory d;
    d.entries = r.u16(end + 10);
    d.size = r.u32(end + 12);
    d.offset = r.u32(end + 16);
    const bool zip64 = d.entries == 0xFFFF || d.size == 0xFFFFFFFF || d.offset == 0xFFFFFFFF;
    if (zip64) {
        if (end < 20 || r.u32(end - 20) != kEnd64LocatorSig) throw FormatError(r.where(), "zip archive lacks its ZIP64 locator");
        const uint64_t at = r.u64(end - 20 + 8);
        if (at > r.size()) throw FormatError(r.where(), "zip archive's ZIP64 record lies past the end of the file");
        r.need(static_cast<std::size_t>(at), 56, "ZIP64 end record");
        const auto p = static_cast<std::size_t>(at);
        if (r.u32(p) != kEnd64Sig) throw FormatError(r.where(), "zip archive's ZIP64 end record is malformed");
        d.entries = r.u64(p + 32);
        d.size = r.u64(p + 40);
        d.offset = r.u64(p + 48);
    }
    if (d.offset > r.size() || d.size > r.size() - d.offset)
        throw FormatError(r.where(), "zip archive is truncated (central directory lies past the end of the file)");
    if (d.entries > d.size / kCentralSize) throw FormatError(r.where(), "zip archive's entry count does not fit its directory");
    return d;
}

// Applies the ZIP64 extra field to the 32-bit values that overflowed.
void readZip64Extra(const Reader& r, std::size_t extra, std::size_t extraLen, uint64_t& size, uint64_t& compSize,
                    uint64_t& local) {
    std::size_t pos = extra;
    while (pos + 4 <= extra + extraLen) {
        const uint16_t id = r.u16(pos);
        const uint16_t len = r.u16(pos + 2);
        if (pos + 4 + len > extra + extraLen) break;
        if (id == 0x0001) {
            std::size_t q = pos + 4;
            const std::size_t stop = q + len;
            for (uint64_t* v : {&size, &compSize, &local}) {
                if (*v != 0xFFFFFFFF) continue;
                if (q + 8 > stop) throw FormatError(r.where(), "zip archive's ZIP64 field is short");
                *v = r.u64(q);
                q += 8;
            }
            return;
        }
        pos += 4 + len;
    }
}

}  // namespace

const ZipEntry* ZipArchive::find(const std::string& name) const {
    for (const ZipEntry& e : entries)
        if (e.name == name) return &e;
    return nullptr;
}

void requireStored(const ZipEntry& entry, const std::string& where) {
    if (!entry.stored)
        throw FormatError(where, "zip entry '" + entry.name + "' is compressed (torch.save stores its records uncompressed)");
}

bool looksLikeZip(const uint8_t* bytes, std::size_t size) {
    return size >= 4 && bytes[0] == 'P' && bytes[1] == 'K' && bytes[2] == 3 && bytes[3] == 4;
}

ZipArchive parseZip(const uint8_t* bytes, std::size_t size, const std::string& where) {
    const Reader r(bytes, size, where);
    const Directory dir = readDirectory(r, findEnd(r));
    ZipArchive zip;
    zip.data = bytes;
    std::size_t pos = static_cast<std::size_t>(dir.offset);
    const std::size_t stop = pos + static_cast<std::size_t>(dir.size);
    for (uint64_t i = 0; i < dir.entries; ++i) {
        if (pos + kCentralSize > stop || r.u32(pos) != kCentralSig)
            throw FormatError(where, "zip archive's central directory is malformed (entry " + std::to_string(i) + ")");
        const uint16_t flags = r.u16(pos + 8);
        const uint16_t method = r.u16(pos + 10);
        uint64_t compSize = r.u32(pos + 20);
        uint64_t entrySize = r.u32(pos + 24);
        const std::size_t nameLen = r.u16(pos + 28);
        const std::size_t extraLen = r.u16(pos + 30);
        const std::size_t commentLen = r.u16(pos + 32);
        uint64_t local = r.u32(pos + 42);
        if (pos + kCentralSize + nameLen + extraLen + commentLen > stop)
            throw FormatError(where, "zip archive's central directory is malformed (entry " + std::to_string(i) + ")");
        ZipEntry e;
        e.name.assign(reinterpret_cast<const char*>(bytes + pos + kCentralSize), nameLen);
        readZip64Extra(r, pos + kCentralSize + nameLen, extraLen, entrySize, compSize, local);
        pos += kCentralSize + nameLen + extraLen + commentLen;
        if (flags & 1) throw FormatError(where, "zip entry '" + e.name + "' is encrypted");
        e.stored = method == 0 && compSize == entrySize;
        entrySize = compSize;  // the bytes the entry occupies
        if (local > size) throw FormatError(where, "zip entry '" + e.name + "' lies past the end of the file");
        const auto l = static_cast<std::size_t>(local);
        r.need(l, kLocalSize, "local header");
        if (r.u32(l) != kLocalSig) throw FormatError(where, "zip entry '" + e.name + "' has a malformed local header");
        const std::size_t dataAt = l + kLocalSize + r.u16(l + 26) + r.u16(l + 28);
        if (dataAt > size || entrySize > size - dataAt)
            throw FormatError(where, "zip entry '" + e.name + "' is truncated (file cut short?)");
        e.offset = dataAt;
        e.size = static_cast<std::size_t>(entrySize);
        zip.entries.push_back(std::move(e));
    }
    return zip;
}

}  // namespace vitscope
