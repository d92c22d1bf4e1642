#include "resources.h"

#include "error.h"
#include "model/model.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>

namespace fs = std::filesystem;

namespace vitscope {

namespace {

bool shapesVocabulary(const Model& m) { return m.tokenizerPath.find("vocab.txt") != std::string::npos; }

std::vector<std::string> propertyDirs(const Model& m) {
    return shapesVocabulary(m) ? std::vector<std::string>{"resources/shapes/", "resources/properties/"}
                               : std::vector<std::string>{"resources/properties/", "resources/shapes/"};
}

}  // namespace

std::vector<std::string> dataRoots() {
    std::vector<std::string> roots;
    if (const char* env = std::getenv("VITSCOPE_DATA_DIR"); env && *env) roots.emplace_back(env);
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) roots.push_back((exe.parent_path().parent_path() / "share" / "vitscope").string());
#ifdef VITSCOPE_SOURCE_DIR
    roots.emplace_back(VITSCOPE_SOURCE_DIR);
#endif
    roots.emplace_back(".");
    return roots;
}

std::string dataFile(const std::string& relative) {
    for (const std::string& root : dataRoots()) {
        std::error_code ec;
        const fs::path p = fs::path(root) / relative;
        if (fs::exists(p, ec)) return p.lexically_normal().string();
    }
    return {};
}

std::string bundledModelDir(const std::string& name) { return dataFile("models/" + name); }

std::string propertyWordList(const std::string& name, const Model& textModel) {
    if (name.empty() || name.find('/') != std::string::npos || name.find("..") != std::string::npos)
        throw InputError("--property " + name, "is not a property name (color, shape, texture, ...)");
    // A word list whose words are outside this vocabulary is useless: the shapes lists go first
    // for the shapes world's word vocabulary, the general lists for BPE models.
    for (const std::string& dir : propertyDirs(textModel)) {
        const std::string p = dataFile(dir + name + ".txt");
        if (!p.empty()) return p;
    }
    std::string known;
    for (const std::string& n : propertyNames(textModel)) known += (known.empty() ? "" : ", ") + n;
    throw InputError("property '" + name + "'", "no word list by that name for this model (it has: " + known +
                                                    "; a file of texts of your own works too)");
}

std::vector<std::string> propertyNames(const Model& textModel) {
    std::set<std::string> names;
    // Only the first directory: its lists fit the model's vocabulary.
    const std::string dir = dataFile(propertyDirs(textModel).front());
    std::error_code ec;
    if (!dir.empty())
        for (const auto& e : fs::directory_iterator(dir, ec))
            if (e.path().extension() == ".txt" && e.path().stem() != "text_pool") names.insert(e.path().stem().string());
    return {names.begin(), names.end()};
}

}  // namespace vitscope
