#include "neuron_describe.h"

#include "analysis/cache.h"
#include "error.h"
#include "io/file_util.h"
#include "io/tensor_io.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;

namespace vitscope::cli {

DescribeSummary readDescribeSummary(const std::string& dir) {
    const std::string path = (fs::path(dir) / "summary.json").string();
    std::ifstream in(path);
    if (!in) throw IoError(path, "cannot be read (is " + dir + " a neurons describe output?)");
    try {
        const nlohmann::json j = nlohmann::json::parse(in);
        DescribeSummary d;
        d.secondOrder = j.at("second_order");
        d.model = d.secondOrder.at("model").get<std::string>();
        d.layer = j.at("layer").get<int>();
        d.convention = j.at("convention").get<std::string>();
        if (j.contains("coefficient") && !j["coefficient"].is_null()) d.coefficient = j["coefficient"].get<double>();
        return d;
    } catch (const nlohmann::json::exception& e) {
        throw FormatError(path, std::string("is not a neurons describe summary (") + e.what() + ")");
    }
}

DescribedLayers readDescribedLayers(const std::vector<std::string>& dirs, const Model& model,
                                    const std::string& modelArg) {
    if (dirs.empty()) throw InputError("--describe", "needs neurons describe outputs, one per layer");
    DescribedLayers out;
    out.key = nlohmann::json::array();
    const VisionTower& v = model.vision;
    for (const std::string& dir : dirs) {
        const DescribeSummary desc = readDescribeSummary(dir);
        if (desc.model != modelFingerprint(model))
            throw InputError(dir, "describes another model's neurons than " + modelArg);
        const int layer = desc.layer;
        if (std::find(out.layers.begin(), out.layers.end(), layer) != out.layers.end())
            throw InputError(dir, "describes layer " + std::to_string(layer) + " again");
        if (layer < 0 || layer >= v.layers() || v.hierarchical())
            throw InputError(dir, "describes a layer this model does not have");
        const std::string file = (fs::path(dir) / "directions.npy").string();
        const at::Tensor d = readNpyTensor(file).to(at::kFloat);
        const int64_t neurons = v.encoder.blocks[static_cast<std::size_t>(layer)].fc2W.size(1);
        if (d.dim() != 2 || d.size(0) != neurons || d.size(1) != v.embedDim())
            throw FormatError(file, "is not the directions [" + std::to_string(neurons) + ", " +
                                        std::to_string(v.embedDim()) + "] of layer " + std::to_string(layer) +
                                        "'s neurons");
        out.layers.push_back(layer);
        out.directions.push_back(d);
        out.key.push_back(
            {{"second_order", desc.secondOrder}, {"layer", layer}, {"directions_sha256", fileSha256(file)}});
    }
    return out;
}

}  // namespace vitscope::cli
