#include "shapes/dataset.h"

#include "error.h"
#include "image/codec.h"
#include "io/file_util.h"

#include <opencv2/imgproc.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>

namespace fs = std::filesystem;

namespace vitscope::shapes {

GenerateResult generateDataset(const GenerateParams& p, const std::function<void(int64_t, int64_t)>& progress) {
    if (p.count <= 0) throw InputError("--count", "must be positive");
    if (p.outDir.empty()) throw InputError("--out", "output directory is required");
    std::error_code ec;
    fs::create_directories(fs::path(p.outDir) / "images", ec);
    fs::create_directories(fs::path(p.outDir) / "masks", ec);
    fs::create_directories(fs::path(p.outDir) / "distractor-masks", ec);
    if (!fs::is_directory(fs::path(p.outDir) / "images", ec)) throw IoError(p.outDir, "cannot create output directory");
    const auto start = std::chrono::steady_clock::now();
    std::string csv = "file,mask,shape,color,texture,position,size,background,group,"
                      "distractor_shape,distractor_color,distractor_texture,distractor_position,distractor_size,distractor_mask\n";
    char name[32];
    for (int64_t i = 0; i < p.count; ++i) {
        const Scene scene = generateScene(p.seed, static_cast<uint64_t>(i), p.world);
        std::snprintf(name, sizeof(name), "%06lld.png", static_cast<long long>(i));
        const std::string image = std::string("images/") + name, mask = std::string("masks/") + name;
        cv::Mat bgr;
        cv::cvtColor(scene.image, bgr, cv::COLOR_RGB2BGR);
        writeImage((fs::path(p.outDir) / image).string(), bgr);
        writeImage((fs::path(p.outDir) / mask).string(), scene.mask);
        csv += image + "," + mask;
        for (Attribute a : kAttributes) csv += "," + attributeValues(a)[static_cast<std::size_t>(scene.labels.value(a))];
        csv += "," + (scene.labels.group >= 0 ? std::to_string(scene.labels.group) : std::string());
        // The distractor (empty cells without one), with its visible mask, for text grounding.
        for (Attribute a : {Attribute::Shape, Attribute::Color, Attribute::Texture, Attribute::Position, Attribute::Size})
            csv += "," + (scene.labels.distractor ? attributeValues(a)[static_cast<std::size_t>(scene.labels.distractorValue(a))] : std::string());
        std::string dmask;
        if (scene.labels.distractor) {
            dmask = std::string("distractor-masks/") + name;
            writeImage((fs::path(p.outDir) / dmask).string(), scene.distractorMask);
        }
        csv += "," + dmask + "\n";
        if (progress && (i % 256 == 255 || i + 1 == p.count)) progress(i + 1, p.count);
    }
    writeFileAtomic((fs::path(p.outDir) / "labels.csv").string(), csv);
    GenerateResult r;
    r.written = p.count;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return r;
}

void writeTextResources(const std::string& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    std::string pool;
    for (const std::string& t : textPool()) pool += t + "\n";
    writeFileAtomic((fs::path(dir) / "text_pool.txt").string(), pool);
    for (Attribute a : kAttributes) {
        std::string words;
        for (const std::string& v : attributeValues(a)) words += v + "\n";
        writeFileAtomic((fs::path(dir) / (std::string(attributeName(a)) + ".txt")).string(), words);
    }
}

}  // namespace vitscope::shapes
