#pragma once
// Writes a Model back to disk in the open_clip layout (safetensors + open_clip_config.json), so
// that models the project trains load through the same loader as any user checkpoint.
#include "io/tensor_io.h"
#include "model/model.h"

#include <nlohmann/json.hpp>

namespace vitscope {

// OpenAI / open_clip tensor names for a CLIP model (vision + text tower).
StateDict toOpenClipStateDict(const Model& model);
// Every tensor of the model (for optimisers and device moves), with its open_clip name.
std::vector<std::pair<std::string, at::Tensor*>> namedModelTensors(Model& model);
// open_clip_config.json content for the model.
nlohmann::json openClipConfig(const Model& model);
void saveOpenClipModel(const Model& model, const std::string& dir);

}  // namespace vitscope
