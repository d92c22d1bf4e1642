#include "io/checkpoint.h"

#include "error.h"
#include "io/file_util.h"

#include <torch/script.h>
#include <torch/serialize.h>

#include <algorithm>
#include <cstring>

namespace vitscope {

namespace {

bool looksLikeSafetensors(const std::vector<uint8_t>& head) {
    return head.size() >= 9 && head[8] == '{';
}

bool isZip(const std::vector<uint8_t>& bytes) {
    return bytes.size() >= 4 && bytes[0] == 'P' && bytes[1] == 'K' && bytes[2] == 3 && bytes[3] == 4;
}

bool containsText(const uint8_t* bytes, std::size_t size, const char* text) {
    const std::size_t n = std::strlen(text);
    return std::search(bytes, bytes + size, text, text + n) != bytes + size;
}

std::string stripPrefix(const std::string& name) {
    static const char* kPrefixes[] = {"module.", "_orig_mod."};
    std::string out = name;
    bool changed = true;
    while (changed) {
        changed = false;
        for (const char* p : kPrefixes) {
            if (out.rfind(p, 0) == 0) {
                out = out.substr(std::strlen(p));
                changed = true;
            }
        }
    }
    return out;
}

void addTensor(StateDict& out, const std::string& name, const at::Tensor& t) {
    at::Tensor c = t.detach().to(at::kCPU);
    if (at::isFloatingType(c.scalar_type())) c = c.to(at::kFloat);
    out[stripPrefix(name)] = c.contiguous();
}

StateDict fromPickle(const std::string& path, const uint8_t* bytes, std::size_t size) {
    std::vector<char> buffer(bytes, bytes + size);
    c10::IValue value;
    try {
        value = torch::pickle_load(buffer);
    } catch (const c10::Error& e) {
        throw FormatError(path, std::string("cannot read torch pickle: ") + e.what_without_backtrace());
    } catch (const std::exception& e) {
        throw FormatError(path, std::string("cannot read torch pickle: ") + e.what());
    }
    // Unwrap {"state_dict": {...}} / {"model": {...}} / {"module": {...}}.
    for (int depth = 0; depth < 3 && value.isGenericDict(); ++depth) {
        bool unwrapped = false;
        for (const auto& item : value.toGenericDict()) {
            if (!item.key().isString()) continue;
            const std::string& key = item.key().toStringRef();
            if ((key == "state_dict" || key == "model" || key == "module" || key == "model_state_dict") &&
                item.value().isGenericDict()) {
                value = item.value();
                unwrapped = true;
                break;
            }
        }
        if (!unwrapped) break;
    }
    if (!value.isGenericDict()) throw FormatError(path, "torch pickle does not hold a state dict (a dict of tensors)");
    StateDict out;
    for (const auto& item : value.toGenericDict()) {
        if (item.key().isString() && item.value().isTensor()) addTensor(out, item.key().toStringRef(), item.value().toTensor());
    }
    if (out.empty()) throw FormatError(path, "torch pickle holds no tensors");
    return out;
}

StateDict fromTorchScript(const std::string& path) {
    try {
        torch::jit::Module module = torch::jit::load(path, torch::kCPU);
        StateDict out;
        for (const auto& p : module.named_parameters(true)) addTensor(out, p.name, p.value);
        for (const auto& b : module.named_buffers(true)) addTensor(out, b.name, b.value);
        if (out.empty()) throw FormatError(path, "TorchScript archive holds no parameters");
        return out;
    } catch (const c10::Error& e) {
        throw FormatError(path, std::string("cannot read TorchScript archive: ") + e.what_without_backtrace());
    }
}

}  // namespace

const char* checkpointFormatName(CheckpointFormat format) {
    switch (format) {
    case CheckpointFormat::Safetensors: return "safetensors";
    case CheckpointFormat::TorchPickle: return "torch-pickle";
    case CheckpointFormat::TorchScript: return "torchscript";
    }
    return "?";
}

Checkpoint loadCheckpoint(const std::string& path) {
    Checkpoint ckpt;
    ckpt.path = path;
    MappedFile file(path);
    if (file.size() == 0) throw FormatError(path, "file is empty");
    const std::vector<uint8_t> head(file.data(), file.data() + std::min<std::size_t>(file.size(), 16));
    if (isZip(head)) {
        // TorchScript archives carry code/ and constants.pkl beside data.pkl.
        if (containsText(file.data(), file.size(), "constants.pkl")) {
            ckpt.format = CheckpointFormat::TorchScript;
            ckpt.tensors = fromTorchScript(path);
        } else {
            ckpt.format = CheckpointFormat::TorchPickle;
            ckpt.tensors = fromPickle(path, file.data(), file.size());
        }
        return ckpt;
    }
    if (head[0] == 0x80) {
        throw FormatError(path, "legacy (pre-zip) torch.save format is not supported; it needs torch >= 1.6's zip format");
    }
    const bool named = path.size() > 12 && path.substr(path.size() - 12) == ".safetensors";
    if (looksLikeSafetensors(head) || named) {
        ckpt.format = CheckpointFormat::Safetensors;
        const SafetensorsView view = parseSafetensors(file.data(), file.size(), path);
        for (const auto& entry : view.entries) addTensor(ckpt.tensors, entry.name, entryToTensor(view, entry));
        if (ckpt.tensors.empty()) throw FormatError(path, "safetensors file holds no tensors");
        return ckpt;
    }
    throw FormatError(path, "not a checkpoint (expected safetensors, a torch zip pickle or a TorchScript archive)");
}

}  // namespace vitscope
