#include "shapes/spurious_demo.h"

#include "io/file_util.h"

#include <filesystem>

namespace vitscope::shapes {

void writeSpuriousDemoClasses(const SpuriousDemo& demo) {
    std::string text;
    for (const char* s : {"circle", "square", "hexagon", "heart"}) text += std::string("0\ta ") + s + "\n";
    for (const char* s : {"triangle", "diamond", "star", "cross"}) text += std::string("1\ta ") + s + "\n";
    std::filesystem::create_directories(demo.dir);
    writeFileAtomic(demo.classesFile(), text);
}

}  // namespace vitscope::shapes
