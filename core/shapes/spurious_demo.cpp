#include "shapes/spurious_demo.h"

#include "image/codec.h"
#include "io/file_util.h"
#include "shapes/world.h"

#include <opencv2/imgproc.hpp>

#include <cstdio>

#include <filesystem>

namespace vitscope::shapes {

void writeSpuriousDemoClasses(const SpuriousDemo& demo) {
    std::string text;
    for (const char* s : {"circle", "square", "hexagon", "heart"}) text += std::string("0\ta ") + s + "\n";
    for (const char* s : {"triangle", "diamond", "star", "cross"}) text += std::string("1\ta ") + s + "\n";
    std::filesystem::create_directories(demo.dir);
    writeFileAtomic(demo.classesFile(), text);
}

int64_t writeWaterbirdsWorld(const std::string& dir, int64_t perSplit, uint64_t seed) {
    namespace fs = std::filesystem;
    std::string csv = "img_id,img_filename,y,split,place,place_filename\n";
    int64_t id = 0;
    char name[64];
    for (int split = 0; split < 3; ++split) {
        WorldParams world;
        world.split = split == 0 ? Split::SpuriousTrain : Split::SpuriousTest;
        const std::string folder = std::string("images/") + (split == 0 ? "train" : split == 1 ? "val" : "test");
        fs::create_directories(fs::path(dir) / folder);
        for (int64_t i = 0; i < perSplit; ++i) {
            const Scene scene = generateScene(seed + static_cast<uint64_t>(split), static_cast<uint64_t>(i), world);
            std::snprintf(name, sizeof name, "/%06lld.png", static_cast<long long>(i));
            cv::Mat bgr;
            cv::cvtColor(scene.image, bgr, cv::COLOR_RGB2BGR);
            writeImage((fs::path(dir) / (folder + name)).string(), bgr);
            const std::string background = attributeValues(Attribute::Background)[static_cast<std::size_t>(scene.labels.value(Attribute::Background))];
            csv += std::to_string(++id) + "," + folder + name + "," + std::to_string(scene.labels.group) + "," + std::to_string(split) + "," +
                   (background == "water" ? "1" : "0") + "," + background + name + "\n";
        }
    }
    writeFileAtomic((fs::path(dir) / "metadata.csv").string(), csv);
    SpuriousDemo demo;
    demo.dir = dir;
    std::string classes;
    for (const char* s : {"circle", "square", "hexagon", "heart"}) classes += std::string("0\ta ") + s + "\n";
    for (const char* s : {"triangle", "diamond", "star", "cross"}) classes += std::string("1\ta ") + s + "\n";
    writeFileAtomic((fs::path(dir) / "classes.tsv").string(), classes);
    auto lines = [](const std::string& commaList) {
        std::string out;
        std::size_t start = 0;
        while (start <= commaList.size()) {
            const std::size_t comma = std::min(commaList.find(',', start), commaList.size());
            std::string item = commaList.substr(start, comma - start);
            while (!item.empty() && item.front() == ' ') item.erase(item.begin());
            out += item + "\n";
            start = comma + 1;
        }
        return out;
    };
    writeFileAtomic((fs::path(dir) / "spurious.txt").string(), lines(demo.spuriousTexts));
    writeFileAtomic((fs::path(dir) / "core.txt").string(), lines(demo.coreTexts));
    return id;
}

}  // namespace vitscope::shapes
