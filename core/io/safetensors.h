#pragma once
// safetensors reader (memory-mapped, fully validated before any tensor is touched) and writer.
// Torch-free so that the parser can be fuzzed on its own; see tensor_io.h for at::Tensor views.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace vitscope {

enum class DType { F32, F16, BF16, F64, I64, I32, U8 };

std::size_t dtypeSize(DType dtype);
const char* dtypeName(DType dtype);  // safetensors spelling: "F32", "F16", ...

struct TensorEntry {
    std::string name;
    DType dtype = DType::F32;
    std::vector<int64_t> shape;
    std::size_t begin = 0;  // byte offsets into the data section
    std::size_t end = 0;
};

// A parsed safetensors byte span. Does not own the bytes.
struct SafetensorsView {
    std::vector<TensorEntry> entries;  // in header order
    std::map<std::string, std::string> metadata;
    const uint8_t* data = nullptr;  // start of the data section
    std::size_t dataSize = 0;

    const TensorEntry* find(const std::string& name) const;
    const uint8_t* bytes(const TensorEntry& entry) const { return data + entry.begin; }
};

// Parses and validates `size` bytes: header length, JSON, dtypes, shapes x dtype size against
// the byte span, offsets inside the data section and no overlap. Throws FormatError naming
// `where` on any problem.
SafetensorsView parseSafetensors(const uint8_t* bytes, std::size_t size, const std::string& where);

// A read-only memory map of a whole file.
class MappedFile {
public:
    explicit MappedFile(const std::string& path);
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const uint8_t* data() const { return m_data; }
    std::size_t size() const { return m_size; }
    const std::string& path() const { return m_path; }

private:
    std::string m_path;
    const uint8_t* m_data = nullptr;
    std::size_t m_size = 0;
};

// A memory-mapped, validated safetensors file.
class SafetensorsFile {
public:
    explicit SafetensorsFile(const std::string& path);
    const SafetensorsView& view() const { return m_view; }
    const std::string& path() const { return m_file.path(); }

private:
    MappedFile m_file;
    SafetensorsView m_view;
};

// One tensor to write: raw little-endian bytes of `dtype` in C order.
struct TensorBlob {
    DType dtype = DType::F32;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
};

// Writes tensors (sorted by name, as the reference writer does) and string metadata.
void writeSafetensors(const std::string& path, const std::map<std::string, TensorBlob>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace vitscope
