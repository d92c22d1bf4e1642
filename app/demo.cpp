// `vitscope-cli demo`: runs the whole engine on a fresh machine with no downloaded weights.
// It writes a small random-weight CLIP ViT in the open_clip layout (safetensors + config),
// loads it back through the same loader as any user checkpoint, draws a test image, decomposes
// the image embedding into embedding / layer / head / token / MLP / bias terms, checks that they
// sum to the embedding, and writes a token-contribution heatmap PNG. The weights are random, so
// the heatmap shows the mechanics, not meaning; the bundled shapes-world model replaces them.
#include "demo.h"
#include "resources.h"

#include "image/codec.h"
#include "image/preprocess.h"
#include "io/file_util.h"
#include "io/tensor_io.h"
#include "model/forward.h"
#include "model/loader.h"
#include "model/random_weights.h"
#include "shapes/zero_shot.h"
#include "text/text_tokenizer.h"

#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include <filesystem>
#include <iostream>
#include <memory>

namespace fs = std::filesystem;

namespace vitscope::cli {

namespace {

struct DemoOptions {
    std::string out = "vitscope-demo";
    std::string model;    // a shapes-world CLIP directory; default models/shapes-clip when present
    bool random = false;  // force the random-weight model
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

// Writes a heatmap of per-patch scores [gh * gw] over an RGB image, both scaled to `side`.
std::string writeHeatmap(const at::Tensor& patchScores, int g, const cv::Mat& rgb, int side, const std::string& path) {
    at::Tensor grid = patchScores.view({g, g}).contiguous().to(at::kFloat);
    grid = (grid - grid.min()) / (grid.max() - grid.min() + 1e-12);
    cv::Mat small(g, g, CV_32F, grid.data_ptr<float>());
    cv::Mat big, heat, overlay, image;
    cv::resize(small, big, {side, side}, 0, 0, cv::INTER_LINEAR);
    big.convertTo(big, CV_8U, 255.0);
    cv::applyColorMap(big, heat, cv::COLORMAP_VIRIDIS);
    cv::resize(rgb, image, {side, side}, 0, 0, cv::INTER_NEAREST);
    cv::cvtColor(image, image, cv::COLOR_RGB2BGR);
    cv::addWeighted(image, 0.45, heat, 0.55, 0, overlay);
    writeImage(path, overlay);
    return path;
}

void printHeadNorms(const Model& model, const Decomposition& d) {
    const VisionTower& v = model.vision;
    std::cout << "decomposition: heads " << d.heads.sizes() << ", max |sum of terms - embedding| = " << d.maxAbsError << "\n"
              << "direct-effect norm per head (summed over tokens), and of each MLP:\n";
    const at::Tensor headNorms = d.heads.sum(3).norm(2, -1)[0];  // [L, H]
    for (int l = 0; l < v.layers(); ++l) {
        std::cout << "  layer " << l << ": heads";
        for (int h = 0; h < v.heads(); ++h) std::cout << " " << headNorms[l][h].item<float>();
        std::cout << " | mlp " << d.mlps[0][l].norm().item<float>() << "\n";
    }
}

std::string findShapesModel(const std::string& given) {
    if (!given.empty()) return given;
    const std::string weights = dataFile("models/shapes-clip/open_clip_model.safetensors");
    return weights.empty() ? std::string() : fs::path(weights).parent_path().string();
}

// The bundled shapes-world CLIP: zero-shot accuracy, one scene's decomposition and the heatmap
// of a caption naming its object.
void runShapesDemo(const std::string& modelDir, const DemoOptions& o) {
    const Model model = loadModel(modelDir);
    const auto tok = loadTokenizer(model.tokenizerPath);
    at::NoGradGuard noGrad;
    const shapes::ZeroShotResult zs = shapes::evaluateZeroShot(model, *tok, 500);
    std::cout << "model: " << model.info.weightsPath << " (shapes-world CLIP, " << model.vision.layers() << " layers x "
              << model.vision.heads() << " heads)\nzero-shot accuracy on 500 held-out scenes:";
    for (std::size_t a = 0; a < 6; ++a) std::cout << " " << shapes::attributeName(shapes::kAttributes[a]) << " " << 100 * zs.accuracy[a] << "%";
    std::cout << "\n";
    const shapes::Scene scene = shapes::generateScene(shapes::kEvalSeed + 7, 3);
    const std::string text = shapes::caption(scene.labels, 6);  // "a {color} {shape}"
    cv::Mat bgr;
    cv::cvtColor(scene.image, bgr, cv::COLOR_RGB2BGR);
    const std::string imagePath = (fs::path(o.out) / "scene.png").string();
    writeImage(imagePath, bgr);
    const Decomposition d = decomposeImages(model, shapes::scenesToPixels({scene}, model.preprocess), {true, Convention::Exact});
    std::cout << "image: " << imagePath << " (" << text << ")\n";
    printHeadNorms(model, d);
    at::Tensor ids = at::zeros({1, model.text->contextLength}, at::kLong);
    const auto t = tok->tokenize(text, model.text->contextLength);
    std::copy(t.begin(), t.end(), ids.data_ptr<int64_t>());
    at::Tensor dir = encodeTexts(model, ids)[0];
    dir = dir / dir.norm();
    const VisionTower& v = model.vision;
    const int g = v.gridFor(model.preprocess.imageSize), first = 1 + v.numExtraPrefix() + v.numRegisters();
    const at::Tensor perToken = at::matmul(d.heads[0].sum(at::IntArrayRef{0, 1}), dir);  // [N]: every layer and head
    std::cout << "heatmap for \"" << text << "\": "
              << writeHeatmap(perToken.narrow(0, first, g * g), g, scene.image, 256, (fs::path(o.out) / "heatmap.png").string()) << "\n";
}

void runRandomDemo(const DemoOptions& o) {
    const std::string modelDir = (fs::path(o.out) / "random-clip").string();
    std::error_code ec;
    fs::create_directories(modelDir, ec);
    RandomVitSpec spec;
    writeDemoModel(modelDir, spec);
    const Model model = loadModel(modelDir);
    const cv::Mat rgb = drawImage();
    cv::Mat bgr;
    cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
    const std::string imagePath = (fs::path(o.out) / "image.png").string();
    writeImage(imagePath, bgr);
    const at::Tensor pixels = loadAndPreprocess({imagePath}, model.preprocess);
    at::NoGradGuard noGrad;
    const Decomposition d = decomposeImages(model, pixels, {true, Convention::Exact});
    std::cout << "model: " << model.info.weightsPath << " (" << model.info.layout << " layout, random weights)\n"
              << "image: " << imagePath << "\n";
    printHeadNorms(model, d);
    // Per-patch contribution of the last layer's heads along the output direction.
    const VisionTower& v = model.vision;
    const int g = v.gridFor(model.preprocess.imageSize), first = 1 + v.numExtraPrefix() + v.numRegisters();
    const at::Tensor dir = d.output[0] / d.output[0].norm();
    const at::Tensor perToken = at::matmul(d.heads[0][v.layers() - 1].sum(0), dir);
    const cv::Mat crop = resizeBicubicAntialias(rgb, 336, 224)(cv::Rect(56, 0, 224, 224)).clone();
    std::cout << "heatmap: " << writeHeatmap(perToken.narrow(0, first, g * g), g, crop, 224,
                                            (fs::path(o.out) / "heatmap_last_layer.png").string()) << "\n";
}

void runDemo(const DemoOptions& o) {
    std::error_code ec;
    fs::create_directories(o.out, ec);
    const std::string shapesModel = o.random ? std::string() : findShapesModel(o.model);
    if (!shapesModel.empty()) runShapesDemo(shapesModel, o);
    else runRandomDemo(o);
}

}  // namespace

void registerDemo(CLI::App& app, std::vector<std::function<void()>>& actions) {
    auto o = std::make_shared<DemoOptions>();
    auto* sub = app.add_subcommand("demo", "Run the engine end to end with no downloads (bundled shapes model, else a random-weight CLIP)");
    sub->add_option("--out", o->out, "Output directory")->capture_default_str();
    sub->add_option("--model", o->model, "Shapes-world CLIP directory (default: models/shapes-clip when present)");
    sub->add_flag("--random", o->random, "Use a generated random-weight CLIP instead");
    sub->callback([&actions, o] { actions.push_back([o] { runDemo(*o); }); });
}

}  // namespace vitscope::cli
