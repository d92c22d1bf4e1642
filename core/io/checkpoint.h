#pragma once
// Reads a checkpoint file as users have it into a flat name -> tensor map (floating-point
// tensors as float32):
// - safetensors (F32 / F16 / BF16), one file or a sharded set named by
//   model.safetensors.index.json (or pytorch_model.bin.index.json for sharded pickles);
// - torch.save files, zip (torch >= 1.6) and legacy, through the restricted pickle reader of
//   io/pickle.h, which never runs anything (code-carrying files are refused);
// - TorchScript archives (OpenAI CLIP .pt) through torch::jit::load.
// Training checkpoints are unwrapped: the state dict is found under `state_dict`, `model`,
// `teacher`, `model_state_dict`, `module`, `state_dict_ema`, `model_ema`, `student` (in that
// order of preference, or the key the caller names), and `module.` / `_orig_mod.` /
// `backbone.` prefixes are stripped (tensors outside `backbone.` are ignored when it is used).
//
//   Checkpoint c = loadCheckpoint("dino_vitbase16_pretrain_full_checkpoint.pth");
//   c.wrapperKey == "teacher"; c.tensors.at("blocks.0.attn.qkv.weight");
#include "io/tensor_io.h"

#include <string>
#include <vector>

namespace vitscope {

enum class CheckpointFormat { Safetensors, TorchPickle, TorchLegacy, TorchScript };

struct CheckpointOptions {
    // The wrapper key to read the state dict from (e.g. "student"); empty = the documented
    // preference order.
    std::string checkpointKey;
};

struct Checkpoint {
    std::string path;
    CheckpointFormat format = CheckpointFormat::Safetensors;
    StateDict tensors;
    int shards = 1;                              // files read (sharded checkpoints)
    std::string wrapperKey;                      // "model", "teacher", "state_dict/model"...; empty = top level
    std::vector<std::string> wrapperCandidates;  // every key that holds a state dict
    std::string strippedPrefix;                  // "module.backbone." ...; empty when none
    std::vector<std::string> ignored;            // tensors not read (outside the backbone, unsupported dtype)
    std::map<std::string, int> storedDTypes;     // dtype as stored -> tensor count
};

Checkpoint loadCheckpoint(const std::string& path, const CheckpointOptions& options = {});
const char* checkpointFormatName(CheckpointFormat format);

// The preference order of wrapper keys (documented in the README).
const std::vector<std::string>& checkpointWrapperKeys();

}  // namespace vitscope
