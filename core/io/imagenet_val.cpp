#include "io/imagenet_val.h"

#include "error.h"
#include "io/file_util.h"
#include "io/matlab_v5.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>

namespace fs = std::filesystem;

namespace vitscope {

namespace {

constexpr const char* kDevkitTruth = "ILSVRC2012_validation_ground_truth.txt";
constexpr const char* kKaggleSolution = "LOC_val_solution.csv";
constexpr const char* kKaggleMapping = "LOC_synset_mapping.txt";

std::string trimmed(const std::string& s) {
    const std::size_t a = s.find_first_not_of(" \t\r"), b = s.find_last_not_of(" \t\r");
    return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

std::string firstName(const std::string& words, const std::string& wnid) {
    const std::string name = trimmed(words.substr(0, words.find(',')));
    return name.empty() ? wnid : name;
}

std::string valImageName(int64_t line) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "ILSVRC2012_val_%08lld", static_cast<long long>(line));
    return buf;
}

std::string lineWhere(int64_t line) {
    return "line " + std::to_string(line) + ": ";
}

// Fills wnids (sorted) and names from the classes, in any order.
void setClasses(ImagenetGroundTruth& gt, std::vector<std::pair<std::string, std::string>> wnidWords) {
    std::sort(wnidWords.begin(), wnidWords.end());
    for (const auto& [wnid, words] : wnidWords) {
        gt.wnids.push_back(wnid);
        gt.names.push_back(firstName(words, wnid));
    }
}

ImagenetGroundTruth readDevkit(const fs::path& dataDir) {
    const std::string meta = (dataDir / "meta.mat").string(), truth = (dataDir / kDevkitTruth).string();
    std::error_code ec;
    if (!fs::is_regular_file(meta, ec))
        throw IoError(meta,
                      "not found (the devkit's data/ folder holds meta.mat and " + std::string(kDevkitTruth) + ")");
    if (!fs::is_regular_file(truth, ec))
        throw IoError(truth,
                      "not found (the devkit's data/ folder holds meta.mat and " + std::string(kDevkitTruth) + ")");
    const std::vector<DevkitClass> classes = readDevkitClasses(meta);
    ImagenetGroundTruth gt;
    gt.layout = "devkit";
    gt.files = {truth, meta};  // the ground truth first
    std::vector<std::pair<std::string, std::string>> wnidWords;
    for (const DevkitClass& c : classes) wnidWords.emplace_back(c.wnid, c.words);
    setClasses(gt, wnidWords);
    std::vector<int64_t> labelOfId(classes.size() + 1, -1);  // ILSVRC2012_ID -> index of its wnid in the sorted list
    for (const DevkitClass& c : classes)
        labelOfId[static_cast<std::size_t>(c.id)] =
            std::lower_bound(gt.wnids.begin(), gt.wnids.end(), c.wnid) - gt.wnids.begin();
    const std::vector<std::string> lines = splitLines(readFileText(truth));
    if (lines.empty()) throw FormatError(truth, "is empty");
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const std::string s = trimmed(lines[i]);
        const int64_t line = static_cast<int64_t>(i) + 1;
        if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos)
            throw FormatError(truth, lineWhere(line) + "'" + s.substr(0, 40) + "' is not an ILSVRC2012_ID");
        const int64_t id = std::stoll(s);
        if (id < 1 || id > static_cast<int64_t>(classes.size()))
            throw FormatError(truth, lineWhere(line) + "ILSVRC2012_ID " + s + " is not a class of " + meta + " (1.." +
                                         std::to_string(classes.size()) + ")");
        gt.labelOf[valImageName(line)] = labelOfId[static_cast<std::size_t>(id)];
    }
    return gt;
}

ImagenetGroundTruth readKaggle(const fs::path& csv) {
    ImagenetGroundTruth gt;
    gt.layout = "kaggle";
    gt.files = {csv.string()};
    const fs::path mappingFile = csv.parent_path() / kKaggleMapping;
    std::error_code ec;
    std::vector<std::pair<std::string, std::string>> wnidWords;
    std::set<std::string> known;
    if (fs::is_regular_file(mappingFile, ec)) {
        gt.files.push_back(mappingFile.string());
        const std::vector<std::string> lines = splitLines(readFileText(mappingFile.string()));
        for (std::size_t i = 0; i < lines.size(); ++i) {
            const std::string s = trimmed(lines[i]);
            const std::size_t space = s.find(' ');
            const std::string wnid = s.substr(0, space);
            if (wnid.empty() || !known.insert(wnid).second)
                throw FormatError(mappingFile.string(), lineWhere(static_cast<int64_t>(i) + 1) +
                                                            (wnid.empty() ? "no wnid" : "wnid " + wnid + " repeated"));
            wnidWords.emplace_back(wnid, space == std::string::npos ? "" : s.substr(space + 1));
        }
    }
    const std::vector<std::string> lines = splitLines(readFileText(csv.string()));
    if (lines.empty() || trimmed(lines[0]) != "ImageId,PredictionString")
        throw FormatError(csv.string(), "does not start with the header ImageId,PredictionString");
    std::map<std::string, std::string> wnidOf;
    for (std::size_t i = 1; i < lines.size(); ++i) {
        const int64_t line = static_cast<int64_t>(i) + 1;
        const std::string s = trimmed(lines[i]);
        const std::size_t comma = s.find(',');
        const std::string image = trimmed(s.substr(0, comma));
        const std::string wnid = comma == std::string::npos
                                     ? ""
                                     : trimmed(s.substr(comma + 1)).substr(0, trimmed(s.substr(comma + 1)).find(' '));
        if (image.empty() || wnid.empty()) throw FormatError(csv.string(), lineWhere(line) + "is not ImageId,wnid ...");
        if (!known.empty() && !known.count(wnid))
            throw FormatError(csv.string(), lineWhere(line) + "wnid " + wnid + " is not in " + mappingFile.string());
        if (!wnidOf.emplace(image, wnid).second)
            throw FormatError(csv.string(), lineWhere(line) + "image " + image + " is listed twice");
    }
    if (wnidOf.empty()) throw FormatError(csv.string(), "lists no image");
    if (known.empty()) {  // no mapping file: the wnids present are the classes
        std::set<std::string> seen;
        for (const auto& [image, wnid] : wnidOf)
            if (seen.insert(wnid).second) wnidWords.emplace_back(wnid, "");
    }
    setClasses(gt, wnidWords);
    for (const auto& [image, wnid] : wnidOf)
        gt.labelOf[image] = std::lower_bound(gt.wnids.begin(), gt.wnids.end(), wnid) - gt.wnids.begin();
    return gt;
}

}  // namespace

std::vector<DevkitClass> readDevkitClasses(const std::string& metaMat) {
    const MatFile mat = readMatV5(metaMat);
    const MatValue& synsets = mat.at("synsets");
    if (synsets.kind != MatValue::Kind::Struct) throw FormatError(metaMat, "'synsets' is not a struct array");
    std::vector<DevkitClass> leaves;
    for (int64_t i = 0; i < synsets.numel(); ++i) {
        const std::string at = "synsets(" + std::to_string(i + 1) + ").";
        if (synsets.field(i, "num_children").scalar(at + "num_children") != 0) continue;
        DevkitClass c;
        const double id = synsets.field(i, "ILSVRC2012_ID").scalar(at + "ILSVRC2012_ID");
        const MatValue& wnid = synsets.field(i, "WNID");
        if (wnid.kind != MatValue::Kind::Char || wnid.text.empty())
            throw FormatError(metaMat, at + "WNID is not a string");
        const MatValue& words = synsets.field(i, "words");
        if (id != static_cast<double>(static_cast<int64_t>(id)))
            throw FormatError(metaMat, at + "ILSVRC2012_ID is not an integer");
        c.id = static_cast<int64_t>(id);
        c.wnid = wnid.text;
        c.words = words.kind == MatValue::Kind::Char ? words.text : "";
        leaves.push_back(c);
    }
    if (leaves.size() < 2)
        throw FormatError(metaMat, "has " + std::to_string(leaves.size()) +
                                       " leaf synsets (num_children == 0); the classes need two or more");
    std::vector<bool> seenId(leaves.size() + 1, false);
    std::set<std::string> seenWnid;
    for (const DevkitClass& c : leaves) {
        if (c.id < 1 || c.id > static_cast<int64_t>(leaves.size()))
            throw FormatError(metaMat, "leaf synset " + c.wnid + " has ILSVRC2012_ID " + std::to_string(c.id) +
                                           ", outside 1.." + std::to_string(leaves.size()) +
                                           " (the number of leaf synsets)");
        if (seenId[static_cast<std::size_t>(c.id)])
            throw FormatError(metaMat, "ILSVRC2012_ID " + std::to_string(c.id) + " belongs to two leaf synsets");
        if (!seenWnid.insert(c.wnid).second)
            throw FormatError(metaMat, "WNID " + c.wnid + " belongs to two leaf synsets");
        seenId[static_cast<std::size_t>(c.id)] = true;
    }
    return leaves;
}

ImagenetGroundTruth readImagenetGroundTruth(const std::string& path) {
    std::error_code ec;
    const fs::path p(path);
    if (!fs::exists(p, ec)) throw IoError(path, "not found");
    if (fs::is_directory(p, ec)) {
        if (fs::is_regular_file(p / kKaggleSolution, ec)) return readKaggle(p / kKaggleSolution);
        if (fs::is_regular_file(p / "data" / "meta.mat", ec)) return readDevkit(p / "data");
        if (fs::is_regular_file(p / "meta.mat", ec)) return readDevkit(p);
        throw InputError(path, "holds neither the devkit (data/meta.mat, data/" + std::string(kDevkitTruth) + ") nor " +
                                   kKaggleSolution);
    }
    if (p.extension() == ".csv") return readKaggle(p);
    return readDevkit(p.parent_path().empty() ? fs::path(".") : p.parent_path());
}

std::vector<int64_t> labelImages(const ImagenetGroundTruth& gt, const std::vector<std::string>& images,
                                 const std::string& data) {
    std::vector<int64_t> labels;
    std::set<std::string> seen;
    for (const std::string& image : images) {
        const std::string name = fs::path(image).stem().string();
        const auto it = gt.labelOf.find(name);
        if (it == gt.labelOf.end()) throw InputError(image, "has no line in the ground truth " + gt.files.front());
        if (!seen.insert(name).second) throw InputError(image, "is a second image named " + name + " in " + data);
        labels.push_back(it->second);
    }
    if (labels.size() != gt.labelOf.size()) {
        std::string missing;
        for (const auto& [name, label] : gt.labelOf)
            if (!seen.count(name)) {
                missing = name;
                break;
            }
        throw InputError(data, "holds " + std::to_string(labels.size()) + " images, the ground truth " +
                                   gt.files.front() + " lists " + std::to_string(gt.labelOf.size()) + " (" + missing +
                                   " is missing)");
    }
    return labels;
}

}  // namespace vitscope
