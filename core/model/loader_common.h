#pragma once
// Shared by the per-family loaders (loader_clip.cpp, loader_vit.cpp): checked tensor access
// that names the file and tensor in every error, config helpers, and the generic readers of
// the parts every plain ViT has, driven by the layout tables of model/layouts.h.
#include "io/tensor_io.h"
#include "model/layouts.h"
#include "model/model.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace vitscope::loader {

std::string shapeText(at::IntArrayRef shape);

// Checked access to a state dict; every problem names the file and the tensor.
class Tensors {
public:
    Tensors(const StateDict& sd, std::string where) : m_sd(sd), m_where(std::move(where)) {}

    bool has(const std::string& name) const { return m_sd.count(name) != 0; }
    at::Tensor get(const std::string& name) const;
    at::Tensor get(const std::string& name, std::vector<int64_t> shape) const;
    at::Tensor opt(const std::string& name, std::vector<int64_t> shape) const {
        return has(name) ? get(name, std::move(shape)) : at::Tensor();
    }
    int64_t dim(const std::string& name, int d) const;
    const std::string& where() const { return m_where; }
    const StateDict& all() const { return m_sd; }

private:
    const StateDict& m_sd;
    std::string m_where;
};

int headsFor(int width, int configured, int headWidth, const std::string& where, const char* tower);
int gridFromPositions(int64_t positions, int prefix, const std::string& where);

// Blocks under `pattern` ("{i}" = index) of a layout, counted by their first LayerNorm.
int countBlocks(const Tensors& t, const LayoutTable& table, const std::string& pattern);
// One pre-norm block of width d (q / k / v fused or split as the names say).
Block readBlock(const Tensors& t, const BlockNames& n, int64_t d);
Encoder readEncoder(const Tensors& t, const LayoutTable& table, const std::string& pattern, int64_t d, const char* tower);
// Patch embedding (conv weight [D, 3, p, p], optional bias): sets width, patch size, patchW / patchB.
void readPatchEmbed(const Tensors& t, const LayoutTable& table, VisionTower& v);
// Class token and position table, [1, 1, D] / [1, N, D] or [D] / [N, D] as the layout stores them.
void readClsAndPositions(const Tensors& t, const LayoutTable& table, VisionTower& v);
// A text tower's token and position embeddings, blocks and final LayerNorm (the parts CLIP and
// SigLIP share; the caller sets heads, activation, eps, projection and pooling).
TextTower readTextBody(const Tensors& t, const LayoutTable& table);
// A LayerNorm's weight and bias (prefix + ".weight" / ".bias").
void readNorm(const Tensors& t, const std::string& prefix, int64_t d, at::Tensor& w, at::Tensor& b);

const nlohmann::json& sub(const nlohmann::json& j, const char* key);
int intOr(const nlohmann::json& j, const char* key, int fallback);
double numberOr(const nlohmann::json& j, const char* key, double fallback);
void readMeanStd(const nlohmann::json& j, const char* meanKey, const char* stdKey, ImagePreprocess& p);
// ImageNet-style evaluation preprocessing: resize the short side to size / crop_pct, crop `size`.
void setImageNetPreprocess(Model& model, const nlohmann::json& cfg, int imageSize);

// The family builders.
Model buildOpenAiClip(const Tensors& t, const nlohmann::json& config);
Model buildHfClip(const Tensors& t, const nlohmann::json& config, const nlohmann::json& prep);
Model buildTimmVit(const Tensors& t, const nlohmann::json& config);
Model buildTorchvisionVit(const Tensors& t, const nlohmann::json& config);
Model buildHfSiglip(const Tensors& t, const nlohmann::json& config, const nlohmann::json& prep);
Model buildTimmSiglip(const Tensors& t, const nlohmann::json& config);
Model buildOpenClipSiglip(const Tensors& t, const nlohmann::json& config);
// Swin (timm hub layout or torchvision swin_t / swin_s / swin_b); refuses Swin V2.
Model buildSwin(const Tensors& t, const nlohmann::json& config, Layout layout);
// MaxViT (timm maxvit_*_tf_* hub layout or torchvision maxvit_t).
Model buildMaxVit(const Tensors& t, const nlohmann::json& config, Layout layout);

}  // namespace vitscope::loader
