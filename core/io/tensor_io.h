#pragma once
// Conversions between the torch-free I/O structs and at::Tensor.
#include "io/npy.h"
#include "io/safetensors.h"

#include <ATen/ATen.h>

#include <map>
#include <string>

namespace vitscope {

using StateDict = std::map<std::string, at::Tensor>;

// Copies one safetensors entry into a tensor of its own dtype (float types stay as stored).
at::Tensor entryToTensor(const SafetensorsView& view, const TensorEntry& entry);
// Reads every tensor of a safetensors file, floating-point ones converted to float32.
StateDict readSafetensorsFloat(const std::string& path, std::map<std::string, std::string>* metadata = nullptr);
void writeSafetensorsTensors(const std::string& path, const StateDict& tensors,
                             const std::map<std::string, std::string>& metadata = {});

at::Tensor npyToTensor(const NpyArray& array);
NpyArray tensorToNpy(const at::Tensor& tensor);  // float32/float16/int64/... CPU copies
at::Tensor readNpyTensor(const std::string& path);
void writeNpyTensor(const std::string& path, const at::Tensor& tensor);

}  // namespace vitscope
