#pragma once
// .npy reader and writer (format versions 1-3; float32, float16, int64 and a few more; C order,
// little endian). Torch-free so that the parser can be fuzzed; tensor_io.h converts to at::Tensor.
#include "io/safetensors.h"

#include <cstdint>
#include <string>
#include <vector>

namespace vitscope {

struct NpyArray {
    DType dtype = DType::F32;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;  // C order, little endian

    int64_t count() const;
};

// The header of a .npy file: where the data starts and what it holds. parseNpyHeader checks
// that the byte span holds exactly the data the shape needs.
struct NpyHeader {
    DType dtype = DType::F32;
    std::vector<int64_t> shape;
    std::size_t dataOffset = 0;
};
NpyHeader parseNpyHeader(const uint8_t* bytes, std::size_t size, const std::string& where);
// Version-1 header bytes (magic .. newline) for dtype and shape, padded with spaces to at least
// `minLength` bytes and to a multiple of 64, so that a header can be rewritten in place.
std::string npyHeaderBytes(DType dtype, const std::vector<int64_t>& shape, std::size_t minLength = 0);

// Parses a whole .npy byte span; throws FormatError naming `where`.
NpyArray parseNpy(const uint8_t* bytes, std::size_t size, const std::string& where);
NpyArray readNpy(const std::string& path);
void writeNpy(const std::string& path, const NpyArray& array);

}  // namespace vitscope
