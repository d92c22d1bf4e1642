#pragma once
// Read-only view of a zip archive held in memory (a memory-mapped torch.save file), enough for
// what torch writes: stored (uncompressed) entries, ZIP64 sizes and offsets. Torch-free and
// fuzzed on its own. Every offset and size is validated against the byte span before use.
//
//   const ZipArchive zip = parseZip(file.data(), file.size(), path);
//   if (const ZipEntry* e = zip.find("archive/data.pkl")) use(zip.bytes(*e), e->size);
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vitscope {

struct ZipEntry {
    std::string name;
    std::size_t offset = 0;  // of the entry's data in the archive
    std::size_t size = 0;    // bytes in the archive
    bool stored = true;      // false: compressed (its bytes are not the content)
};

struct ZipArchive {
    std::vector<ZipEntry> entries;  // central-directory order
    const uint8_t* data = nullptr;  // the archive bytes (not owned)

    const ZipEntry* find(const std::string& name) const;
    const uint8_t* bytes(const ZipEntry& entry) const { return data + entry.offset; }
};

// Throws FormatError naming `where` unless the entry is stored uncompressed.
void requireStored(const ZipEntry& entry, const std::string& where);

bool looksLikeZip(const uint8_t* bytes, std::size_t size);

// Parses the central directory of `size` bytes. Throws FormatError naming `where` for a
// truncated or malformed archive or an encrypted entry. Compressed entries are listed with
// stored = false (torch.save stores its records uncompressed; requireStored() says so).
ZipArchive parseZip(const uint8_t* bytes, std::size_t size, const std::string& where);

}  // namespace vitscope
