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

namespace vitscope {

// timm ViT names (patch_embed.proj, cls_token, pos_embed, blocks.N..., norm, head) for a
// classifier model, and a timm_config.json with `extra` merged in.
StateDict toTimmStateDict(const Model& model);
void saveTimmModel(const Model& model, const std::string& dir, const nlohmann::json& extra = nlohmann::json::object());

}  // namespace vitscope
