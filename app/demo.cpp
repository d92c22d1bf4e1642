// `vitscope-cli demo`: runs the whole engine on a fresh machine with no downloaded weights.
// It writes a small random-weight CLIP ViT in the open_clip layout (safetensors + config),
// loads it back through the same loader as any user checkpoint, draws a test image, decomposes
// the image embedding into embedding / layer / head / token / MLP / bias terms, checks that they
// sum to the embedding, and writes a token-contribution heatmap PNG. The weights are random, so
// the heatmap shows the mechanics, not meaning; the bundled shapes-world model replaces them.
#include "demo.h"

#include "image/preprocess.h"
#include "io/file_util.h"
#include "io/tensor_io.h"
#include "model/forward.h"
#include "model/loader.h"
#include "model/random_weights.h"

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <filesystem>
#include <iostream>
#include <memory>

namespace fs = std::filesystem;

namespace vitscope::cli {

namespace {

struct DemoOptions {
    std::string out = "vitscope-demo";
};

void writeDemoModel(const std::string& dir, RandomVitSpec& spec) {
    spec.layout = RandomLayout::OpenAiClip;
    spec.imageSize = 224;
    spec.patchSize = 32;
    spec.width = 128;
    spec.layers = 4;
    spec.heads = 2;
    spec.embedDim = 64;
    spec.textWidth = 64;
    spec.textLayers = 2;
    spec.seed = 2024;
    writeSafetensorsTensors((fs::path(dir) / "open_clip_model.safetensors").string(), randomVitStateDict(spec));
    nlohmann::json cfg = {{"model_cfg",
                           {{"embed_dim", spec.embedDim},
                            {"quick_gelu", true},
                            {"vision_cfg", {{"image_size", 224}, {"layers", spec.layers}, {"width", spec.width}, {"patch_size", 32}}},
                            {"text_cfg", {{"context_length", 77}, {"vocab_size", 49408}, {"width", 64}, {"heads", 1}, {"layers", 2}}}}}};
    writeFileAtomic((fs::path(dir) / "open_clip_config.json").string(), cfg.dump(2));
}

cv::Mat drawImage() {
    cv::Mat img(200, 300, CV_8UC3, cv::Scalar(40, 90, 160));
    cv::circle(img, {110, 90}, 45, cv::Scalar(230, 40, 40), cv::FILLED);
    cv::rectangle(img, {190, 110}, {260, 170}, cv::Scalar(30, 200, 60), cv::FILLED);
    return img;  // RGB
}

void runDemo(const DemoOptions& o) {
    std::error_code ec;
    fs::create_directories(o.out, ec);
    const std::string modelDir = (fs::path(o.out) / "random-clip").string();
    fs::create_directories(modelDir, ec);
    RandomVitSpec spec;
    writeDemoModel(modelDir, spec);
    const Model model = loadModel(modelDir);

    const cv::Mat rgb = drawImage();
    cv::Mat bgr;
    cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
    const std::string imagePath = (fs::path(o.out) / "image.png").string();
    cv::imwrite(imagePath, bgr);
    const at::Tensor pixels = loadAndPreprocess({imagePath}, model.preprocess);

    at::NoGradGuard noGrad;
    DecomposeOptions opts;
    opts.tokens = true;
    const Decomposition d = decomposeImages(model, pixels, opts);
    const VisionTower& v = model.vision;
    std::cout << "model: " << model.info.weightsPath << " (" << model.info.layout << " layout, random weights)\n"
              << "  " << v.layers() << " layers x " << v.heads() << " heads, width " << v.width << ", embed dim "
              << v.embedDim() << ", " << v.tokensFor(model.preprocess.imageSize) << " tokens\n"
              << "image: " << imagePath << "\n"
              << "decomposition: heads " << d.heads.sizes() << ", max |sum of terms - embedding| = " << d.maxAbsError
              << "\n";
    // Direct-effect norm of each head (summed over tokens) and of the other terms.
    const at::Tensor headNorms = d.heads.sum(3).norm(2, -1)[0];  // [L, H]
    for (int l = 0; l < v.layers(); ++l) {
        std::cout << "  layer " << l << ": heads";
        for (int h = 0; h < v.heads(); ++h) std::cout << " " << headNorms[l][h].item<float>();
        std::cout << " | mlp " << d.mlps[0][l].norm().item<float>() << "\n";
    }
    // Heatmap: per-patch contribution of the last layer's heads, projected on the output direction.
    const int g = v.gridFor(model.preprocess.imageSize);
    const int first = 1 + v.numExtraPrefix() + v.numRegisters();
    const at::Tensor dir = d.output[0] / d.output[0].norm();
    at::Tensor perToken = at::matmul(d.heads[0][v.layers() - 1].sum(0), dir);  // [N]
    at::Tensor grid = perToken.narrow(0, first, g * g).view({g, g}).contiguous();
    grid = (grid - grid.min()) / (grid.max() - grid.min() + 1e-12);
    cv::Mat small(g, g, CV_32F, grid.data_ptr<float>());
    cv::Mat big, heat, overlay;
    cv::resize(small, big, {model.preprocess.imageSize, model.preprocess.imageSize}, 0, 0, cv::INTER_LINEAR);
    big.convertTo(big, CV_8U, 255.0);
    cv::applyColorMap(big, heat, cv::COLORMAP_VIRIDIS);
    cv::Mat crop = resizeBicubicAntialias(rgb, 336, 224)(cv::Rect(56, 0, 224, 224)).clone();
    cv::cvtColor(crop, crop, cv::COLOR_RGB2BGR);
    cv::addWeighted(crop, 0.5, heat, 0.5, 0, overlay);
    const std::string heatPath = (fs::path(o.out) / "heatmap_last_layer.png").string();
    cv::imwrite(heatPath, overlay);
    std::cout << "heatmap: " << heatPath << "\n";
}

}  // namespace

void registerDemo(CLI::App& app, std::vector<std::function<void()>>& actions) {
    auto o = std::make_shared<DemoOptions>();
    auto* sub = app.add_subcommand("demo", "Run the engine end to end on a generated random-weight CLIP (no downloads)");
    sub->add_option("--out", o->out, "Output directory")->capture_default_str();
    sub->callback([&actions, o] { actions.push_back([o] { runDemo(*o); }); });
}

}  // namespace vitscope::cli
