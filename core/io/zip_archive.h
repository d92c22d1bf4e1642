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
    std::size_t size = 0;    // uncompressed = stored size
};

struct ZipArchive {
    std::vector<ZipEntry> entries;  // central-directory order
    const uint8_t* data = nullptr;  // the archive bytes (not owned)

    const ZipEntry* find(const std::string& name) const;
    const uint8_t* bytes(const ZipEntry& entry) const { return data + entry.offset; }
};

bool looksLikeZip(const uint8_t* bytes, std::size_t size);

// Parses the central directory of `size` bytes. Throws FormatError naming `where` for a
// truncated or malformed archive, or for a compressed or encrypted entry (torch stores its
// records uncompressed).
ZipArchive parseZip(const uint8_t* bytes, std::size_t size, const std::string& where);

}  // namespace vitscope
