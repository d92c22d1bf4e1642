#include "io/safetensors.h"

#include "error.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <limits>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace vitscope {

namespace {

constexpr std::size_t kMaxHeaderBytes = 100u * 1024u * 1024u;

bool parseDType(const std::string& s, DType& out) {
    static const std::pair<const char*, DType> kNames[] = {
        {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16}, {"F64", DType::F64},
        {"I64", DType::I64}, {"I32", DType::I32}, {"U8", DType::U8}};
    for (const auto& [name, dtype] : kNames) {
        if (s == name) {
            out = dtype;
            return true;
        }
    }
    return false;
}

bool mulOverflows(std::size_t a, std::size_t b, std::size_t& out) {
    if (a != 0 && b > std::numeric_limits<std::size_t>::max() / a) return true;
    out = a * b;
    return false;
}

uint64_t readLe64(const uint8_t* p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

TensorEntry parseEntry(const std::string& name, const nlohmann::json& info, std::size_t dataSize,
                       const std::string& where) {
    const std::string ctx = "tensor '" + name + "'";
    if (!info.is_object()) throw FormatError(where, ctx + " header entry is not an object");
    TensorEntry e;
    e.name = name;
    auto dt = info.find("dtype");
    if (dt == info.end() || !dt->is_string())
        throw FormatError(where, ctx + " has no dtype string");
    if (!parseDType(dt->get<std::string>(), e.dtype))
        throw FormatError(where, ctx + " has unsupported dtype '" + dt->get<std::string>() + "'");
    auto shape = info.find("shape");
    if (shape == info.end() || !shape->is_array())
        throw FormatError(where, ctx + " has no shape array");
    std::size_t count = 1;
    for (const auto& d : *shape) {
        if (!d.is_number_unsigned()) throw FormatError(where, ctx + " has a non-integer or negative dimension");
        const uint64_t v = d.get<uint64_t>();
        if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) || mulOverflows(count, v, count))
            throw FormatError(where, ctx + " shape overflows");
        e.shape.push_back(static_cast<int64_t>(v));
    }
    auto off = info.find("data_offsets");
    if (off == info.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
        !(*off)[1].is_number_unsigned())
        throw FormatError(where, ctx + " has no valid data_offsets [begin, end]");
    const uint64_t begin = (*off)[0].get<uint64_t>();
    const uint64_t end = (*off)[1].get<uint64_t>();
    if (begin > end || end > dataSize)
        throw FormatError(where, ctx + " data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                                     "] fall outside the " + std::to_string(dataSize) + "-byte data section");
    std::size_t bytes = 0;
    if (mulOverflows(count, dtypeSize(e.dtype), bytes) || bytes != end - begin)
        throw FormatError(where, ctx + " spans " + std::to_string(end - begin) + " bytes but its shape and dtype need " +
                                     std::to_string(bytes));
    e.begin = static_cast<std::size_t>(begin);
    e.end = static_cast<std::size_t>(end);
    return e;
}

}  // namespace

std::size_t dtypeSize(DType dtype) {
    switch (dtype) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    case DType::F64: return 8;
    case DType::I64: return 8;
    case DType::I32: return 4;
    case DType::U8: return 1;
    }
    return 1;
}

const char* dtypeName(DType dtype) {
    switch (dtype) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::F64: return "F64";
    case DType::I64: return "I64";
    case DType::I32: return "I32";
    case DType::U8: return "U8";
    }
    return "?";
}

const TensorEntry* SafetensorsView::find(const std::string& name) const {
    for (const auto& e : entries)
        if (e.name == name) return &e;
    return nullptr;
}

SafetensorsView parseSafetensors(const uint8_t* bytes, std::size_t size, const std::string& where) {
    if (size < 8) throw FormatError(where, "file is " + std::to_string(size) + " bytes, too short for a safetensors header");
    const uint64_t headerLen = readLe64(bytes);
    if (headerLen > size - 8 || headerLen > kMaxHeaderBytes)
        throw FormatError(where, "header length " + std::to_string(headerLen) + " exceeds the file size " +
                                     std::to_string(size) + " (truncated or not a safetensors file)");
    const char* text = reinterpret_cast<const char*>(bytes + 8);
    nlohmann::json header = nlohmann::json::parse(text, text + headerLen, nullptr, false);
    if (header.is_discarded() || !header.is_object())
        throw FormatError(where, "header is not a valid JSON object");

    SafetensorsView view;
    view.data = bytes + 8 + headerLen;
    view.dataSize = size - 8 - static_cast<std::size_t>(headerLen);
    for (auto it = header.begin(); it != header.end(); ++it) {
        if (it.key() == "__metadata__") {
            if (!it->is_object()) throw FormatError(where, "__metadata__ is not an object");
            for (auto m = it->begin(); m != it->end(); ++m) {
                if (!m->is_string()) throw FormatError(where, "__metadata__ value '" + m.key() + "' is not a string");
                view.metadata[m.key()] = m->get<std::string>();
            }
            continue;
        }
        view.entries.push_back(parseEntry(it.key(), *it, view.dataSize, where));
    }
    std::vector<const TensorEntry*> sorted;
    for (const auto& e : view.entries) sorted.push_back(&e);
    std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
    for (std::size_t i = 1; i < sorted.size(); ++i) {
        if (sorted[i]->begin < sorted[i - 1]->end)
            throw FormatError(where, "tensors '" + sorted[i - 1]->name + "' and '" + sorted[i]->name + "' overlap");
    }
    return view;
}

MappedFile::MappedFile(const std::string& path) : m_path(path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw IoError(path, std::string("cannot open: ") + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw IoError(path, "not a regular file");
    }
    m_size = static_cast<std::size_t>(st.st_size);
    if (m_size > 0) {
        void* p = ::mmap(nullptr, m_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            ::close(fd);
            throw IoError(path, std::string("cannot map: ") + std::strerror(errno));
        }
        m_data = static_cast<const uint8_t*>(p);
    }
    ::close(fd);
}

MappedFile::~MappedFile() {
    if (m_data) ::munmap(const_cast<uint8_t*>(m_data), m_size);
}

SafetensorsFile::SafetensorsFile(const std::string& path)
    : m_file(path), m_view(parseSafetensors(m_file.data(), m_file.size(), path)) {}

void writeSafetensors(const std::string& path, const std::map<std::string, TensorBlob>& tensors,
                      const std::map<std::string, std::string>& metadata) {
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata.empty()) header["__metadata__"] = metadata;
    std::size_t offset = 0;
    for (const auto& [name, blob] : tensors) {
        std::size_t count = 1;
        for (int64_t d : blob.shape) {
            if (d < 0) throw InputError(name, "negative dimension");
            count *= static_cast<std::size_t>(d);
        }
        if (count * dtypeSize(blob.dtype) != blob.bytes.size())
            throw InputError(name, "byte size does not match shape and dtype");
        header[name] = {{"dtype", dtypeName(blob.dtype)},
                        {"shape", blob.shape},
                        {"data_offsets", {offset, offset + blob.bytes.size()}}};
        offset += blob.bytes.size();
    }
    std::string text = header.dump();
    while (text.size() % 8 != 0) text.push_back(' ');
    const std::string tmp = path + ".partial";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) throw IoError(path, "cannot open for writing");
        uint8_t len[8];
        uint64_t n = text.size();
        for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));
        out.write(reinterpret_cast<const char*>(len), 8);
        out.write(text.data(), static_cast<std::streamsize>(text.size()));
        for (const auto& [name, blob] : tensors)
            out.write(reinterpret_cast<const char*>(blob.bytes.data()), static_cast<std::streamsize>(blob.bytes.size()));
        if (!out.flush()) throw IoError(path, "write failed");
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) throw IoError(path, "cannot rename the finished file into place");
}

}  // namespace vitscope
