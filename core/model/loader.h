#pragma once
// Finds a model's files (a file, a directory, the Hugging Face hub cache, ~/.cache/clip) and
// maps any supported checkpoint layout onto Model, inferring the architecture from tensor
// shapes plus the config files that sit beside the weights.
#include "io/checkpoint.h"
#include "io/tensor_io.h"
#include "model/model.h"

#include <nlohmann/json.hpp>

#include <string>

namespace vitscope {

struct ModelFiles {
    std::string weights;             // one file, or a shard index (*.index.json)
    std::string config;              // open_clip_config.json / config.json / timm_config.json; may be empty
    std::string preprocessorConfig;  // Hugging Face preprocessor_config.json; may be empty
    std::string tokenizer;           // merges .gz, or a directory with vocab.json + merges.txt; may be empty
};

// Resolves what the user named. Throws IoError when nothing usable is found.
ModelFiles resolveModelFiles(const std::string& spec);

// Lists model files found in the Hugging Face hub cache and ~/.cache/clip (for pickers).
std::vector<std::string> discoverModels();

// Loads and validates a model; throws ModelError / FormatError / IoError naming the file.
// `options.checkpointKey` picks the wrapper key of a training checkpoint ("student"...).
Model loadModel(const std::string& spec, const CheckpointOptions& options = {});

// Builds a model from tensors already in memory; `config` may be null. `where` names the
// source in error messages.
Model buildModel(const StateDict& tensors, const nlohmann::json& config, const std::string& where,
                 const nlohmann::json& preprocessorConfig = nlohmann::json());

}  // namespace vitscope
