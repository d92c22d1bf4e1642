#pragma once
// Reads a checkpoint file as users have it into a flat name -> float32 tensor map:
// safetensors (F32/F16/BF16), torch zip-pickle state dicts (.bin/.pth/.pt, with `state_dict` /
// `model` wrapper keys and `module.` prefixes) and TorchScript archives (OpenAI CLIP .pt).
#include "io/tensor_io.h"

#include <string>

namespace vitscope {

enum class CheckpointFormat { Safetensors, TorchPickle, TorchScript };

struct Checkpoint {
    std::string path;
    CheckpointFormat format = CheckpointFormat::Safetensors;
    StateDict tensors;
};

Checkpoint loadCheckpoint(const std::string& path);
const char* checkpointFormatName(CheckpointFormat format);

}  // namespace vitscope
