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

// Parses a whole .npy byte span; throws FormatError naming `where`.
NpyArray parseNpy(const uint8_t* bytes, std::size_t size, const std::string& where);
NpyArray readNpy(const std::string& path);
void writeNpy(const std::string& path, const NpyArray& array);

}  // namespace vitscope
