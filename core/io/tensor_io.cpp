#include "io/tensor_io.h"

#include "error.h"

#include <cstring>

namespace vitscope {

namespace {

at::ScalarType toScalarType(DType dtype) {
    switch (dtype) {
    case DType::F32: return at::kFloat;
    case DType::F16: return at::kHalf;
    case DType::BF16: return at::kBFloat16;
    case DType::F64: return at::kDouble;
    case DType::I64: return at::kLong;
    case DType::I32: return at::kInt;
    case DType::U8: return at::kByte;
    }
    return at::kFloat;
}

DType fromScalarType(at::ScalarType type, const std::string& where) {
    switch (type) {
    case at::kFloat: return DType::F32;
    case at::kHalf: return DType::F16;
    case at::kBFloat16: return DType::BF16;
    case at::kDouble: return DType::F64;
    case at::kLong: return DType::I64;
    case at::kInt: return DType::I32;
    case at::kByte: return DType::U8;
    default: throw InputError(where, std::string("unsupported tensor dtype ") + c10::toString(type));
    }
}

at::Tensor fromBytes(const uint8_t* bytes, std::size_t size, DType dtype, const std::vector<int64_t>& shape) {
    at::Tensor t = at::empty(shape, at::TensorOptions().dtype(toScalarType(dtype)));
    if (size > 0) std::memcpy(t.data_ptr(), bytes, size);
    return t;
}

}  // namespace

at::Tensor entryToTensor(const SafetensorsView& view, const TensorEntry& entry) {
    return fromBytes(view.bytes(entry), entry.end - entry.begin, entry.dtype, entry.shape);
}

StateDict readSafetensorsFloat(const std::string& path, std::map<std::string, std::string>* metadata) {
    SafetensorsFile file(path);
    StateDict out;
    for (const auto& entry : file.view().entries) {
        at::Tensor t = entryToTensor(file.view(), entry);
        if (at::isFloatingType(t.scalar_type())) t = t.to(at::kFloat);
        out[entry.name] = t;
    }
    if (metadata) *metadata = file.view().metadata;
    return out;
}

void writeSafetensorsTensors(const std::string& path, const StateDict& tensors,
                             const std::map<std::string, std::string>& metadata) {
    std::map<std::string, TensorBlob> blobs;
    for (const auto& [name, tensor] : tensors) {
        at::Tensor t = tensor.detach().to(at::kCPU).contiguous();
        TensorBlob blob;
        blob.dtype = fromScalarType(t.scalar_type(), name);
        blob.shape = t.sizes().vec();
        const auto* p = static_cast<const uint8_t*>(t.data_ptr());
        blob.bytes.assign(p, p + t.numel() * t.element_size());
        blobs[name] = std::move(blob);
    }
    writeSafetensors(path, blobs, metadata);
}

at::Tensor npyToTensor(const NpyArray& array) {
    return fromBytes(array.bytes.data(), array.bytes.size(), array.dtype, array.shape);
}

NpyArray tensorToNpy(const at::Tensor& tensor) {
    at::Tensor t = tensor.detach().to(at::kCPU).contiguous();
    NpyArray array;
    array.dtype = fromScalarType(t.scalar_type(), "npy");
    array.shape = t.sizes().vec();
    const auto* p = static_cast<const uint8_t*>(t.data_ptr());
    array.bytes.assign(p, p + t.numel() * t.element_size());
    return array;
}

at::Tensor readNpyTensor(const std::string& path) { return npyToTensor(readNpy(path)); }

void writeNpyTensor(const std::string& path, const at::Tensor& tensor) { writeNpy(path, tensorToNpy(tensor)); }

}  // namespace vitscope
