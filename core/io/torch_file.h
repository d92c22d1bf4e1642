#pragma once
// Reads a file written by torch.save without torch and without running anything: the zip
// format (torch >= 1.6: ARCHIVE/data.pkl + ARCHIVE/data/KEY records) and the legacy format
// (magic number, protocol, sys info, the object pickle, its storage keys, then each storage
// as int64 numel + raw bytes). The object tree comes from the restricted reader in
// io/pickle.h; every tensor is checked against its storage's bytes. Torch-free and fuzzed.
//
//   MappedFile file(path);
//   const TorchFile tf = parseTorchFile(file.data(), file.size(), path);
//   for (const PickleTensor& t : tf.pickle.tensors) tf.storages.at(t.storageKey) ...
#include "io/pickle.h"
#include "io/zip_archive.h"

#include <map>
#include <string>

namespace vitscope {

struct TorchStorage {
    StorageDType dtype = StorageDType::F32;
    const uint8_t* data = nullptr;  // into the file bytes (not owned)
    uint64_t numel = 0;             // elements
};

struct TorchFile {
    enum class Format { Zip, Legacy };
    Format format = Format::Zip;
    PickleData pickle;
    std::map<std::string, TorchStorage> storages;

    // The storage bytes a tensor views (its storage, or a legacy view's root) and the element
    // offset of that storage inside them.
    const TorchStorage& storageOf(const PickleTensor& t, uint64_t& elementOffset) const;
};

bool looksLikeLegacyTorch(const uint8_t* bytes, std::size_t size);

// Parses and validates `size` bytes. Throws FormatError naming `where`.
TorchFile parseTorchFile(const uint8_t* bytes, std::size_t size, const std::string& where);
// The same for a zip archive already parsed (its bytes stay owned by the caller).
TorchFile parseTorchZip(const ZipArchive& zip, const std::string& where);

}  // namespace vitscope
