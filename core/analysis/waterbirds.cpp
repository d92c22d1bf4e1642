#include "analysis/waterbirds.h"

#include "analysis/labels.h"
#include "error.h"

#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <set>

namespace fs = std::filesystem;

namespace vitscope {

namespace {

// A metadata cell that must be one of `allowed` ("0", "1"...).
int smallInt(const std::string& file, int line, const std::string& column, const std::string& value, int maxValue) {
    for (int v = 0; v <= maxValue; ++v)
        if (value == std::to_string(v)) return v;
    std::string range = "0";
    for (int v = 1; v <= maxValue; ++v) range += (v == maxValue ? " or " : ", ") + std::to_string(v);
    throw FormatError(file,
                      "line " + std::to_string(line) + ": column " + column + " is '" + value + "', not " + range);
}

// torchvision's ImageFolder extensions (IMG_EXTENSIONS), case-insensitive: other files are not samples.
bool isImageFile(const fs::path& p) {
    std::string ext = p.extension().string();
    for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const char* e : {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"})
        if (ext == e) return true;
    return false;
}

}  // namespace

std::vector<WaterbirdsSample> readWaterbirdsMetadata(const std::string& root, int split) {
    const std::string file = (fs::path(root) / "metadata.csv").string();
    const auto rows = readCsvTable(file);
    if (rows.empty()) throw FormatError(file, "has a header but no rows");
    for (const char* column : {"img_id", "img_filename", "y", "split", "place", "place_filename"})
        if (!rows.front().count(column))
            throw FormatError(
                file, std::string("has no column ") + column +
                          " (group-DRO's metadata.csv has img_id, img_filename, y, split, place, place_filename)");
    std::vector<WaterbirdsSample> out;
    int line = 1;
    for (const auto& row : rows) {
        ++line;
        const int s = smallInt(file, line, "split", row.at("split"), 2);
        const int y = smallInt(file, line, "y", row.at("y"), 1);
        const int place = smallInt(file, line, "place", row.at("place"), 1);
        if (s != split) continue;
        const std::string name = row.at("img_filename");
        if (name.empty()) throw FormatError(file, "line " + std::to_string(line) + ": img_filename is empty");
        const fs::path image = fs::path(root) / name;
        std::error_code ec;
        if (!fs::is_regular_file(image, ec))
            throw FormatError(file, "line " + std::to_string(line) + ": image " + name + " is not in " + root);
        out.push_back({fs::absolute(image).lexically_normal().string(), y, place});
    }
    if (out.empty()) throw FormatError(file, "has no rows of split " + std::to_string(split));
    return out;
}

std::vector<WaterbirdsSample> readWaterbirdsFolders(const std::string& root) {
    std::error_code ec;
    if (!fs::is_directory(root, ec)) throw IoError(root, "is not a folder");
    std::vector<std::string> classes;
    for (const auto& e : fs::directory_iterator(root))
        if (e.is_directory()) classes.push_back(e.path().filename().string());
    std::sort(classes.begin(), classes.end());
    if (classes.size() != 2)
        throw FormatError(root, "has no metadata.csv and " + std::to_string(classes.size()) +
                                    " subfolders; vit-decompose's layout has two class folders (landbird, waterbird)");
    std::vector<WaterbirdsSample> out;
    for (int c = 0; c < 2; ++c) {
        std::vector<fs::path> files;
        for (const auto& e : fs::directory_iterator(fs::path(root) / classes[static_cast<std::size_t>(c)]))
            if (e.is_regular_file() && isImageFile(e.path())) files.push_back(e.path());
        std::sort(files.begin(), files.end());
        for (const fs::path& f : files) {
            const std::string stem = f.stem().string();
            const std::size_t us = stem.rfind('_');
            if (us == std::string::npos)
                throw FormatError(f.string(),
                                  "has no _water / _land suffix (vit-decompose's archives name the place last)");
            out.push_back({fs::absolute(f).lexically_normal().string(), c, stem.substr(us + 1) == "water" ? 1 : 0});
        }
    }
    if (out.empty()) throw FormatError(root, "its class folders hold no images");
    return out;
}

std::vector<WaterbirdsSample> readWaterbirds(const std::string& root, int split, std::string* layout) {
    std::error_code ec;
    if (!fs::exists(root, ec)) throw IoError(root, "does not exist");
    if (fs::is_regular_file(fs::path(root) / "metadata.csv", ec)) {
        if (layout) *layout = "group-dro metadata.csv (split " + std::to_string(split) + ")";
        return readWaterbirdsMetadata(root, split);
    }
    if (layout) *layout = "vit-decompose class folders";
    return readWaterbirdsFolders(root);
}

const std::vector<std::string>& waterbirdsGroupNames() {
    static const std::vector<std::string> names{"landbird_on_land", "landbird_on_water", "waterbird_on_land",
                                                "waterbird_on_water"};
    return names;
}

std::string waterbirdsGroup(int y, int place) {
    return waterbirdsGroupNames()[static_cast<std::size_t>(2 * y + place)];
}

WaterbirdsAccuracy waterbirdsAccuracy(const at::Tensor& predicted, const std::vector<int>& y,
                                      const std::vector<int>& place) {
    const int64_t n = predicted.size(0);
    if (static_cast<int64_t>(y.size()) != n || static_cast<int64_t>(place.size()) != n)
        throw InputError("waterbirds labels", "count differs from the predictions'");
    const at::Tensor p = predicted.to(at::kLong).contiguous();
    const int64_t* pp = p.data_ptr<int64_t>();
    WaterbirdsAccuracy a;
    a.group.assign(4, 0), a.count.assign(4, 0);
    std::vector<int64_t> correct(4, 0);
    int64_t total = 0;
    for (int64_t i = 0; i < n; ++i) {
        const std::size_t g =
            static_cast<std::size_t>(2 * y[static_cast<std::size_t>(i)] + place[static_cast<std::size_t>(i)]);
        const bool ok = pp[i] == y[static_cast<std::size_t>(i)];
        correct[g] += ok, a.count[g] += 1, total += ok;
    }
    a.full = n > 0 ? static_cast<double>(total) / n : 0;
    a.worstGroup = 1;
    int present = 0;
    for (std::size_t g = 0; g < 4; ++g) {
        if (a.count[g] == 0) continue;
        a.group[g] = static_cast<double>(correct[g]) / a.count[g];
        a.worstGroup = std::min(a.worstGroup, a.group[g]);
        a.averageGroup += a.group[g];
        ++present;
    }
    if (present > 0)
        a.averageGroup /= present;
    else
        a.worstGroup = 0;
    return a;
}

WaterbirdsProtocol parseWaterbirdsProtocol(const std::string& name) {
    if (name == "textspan") return WaterbirdsProtocol::TextSpan;
    if (name == "vit-decompose") return WaterbirdsProtocol::VitDecompose;
    throw InputError("--protocol " + name,
                     "must be textspan (compute_use_specific_heads.py) or vit-decompose (zs_spur_correlation.py)");
}

const char* waterbirdsProtocolName(WaterbirdsProtocol p) {
    return p == WaterbirdsProtocol::TextSpan ? "textspan" : "vit-decompose";
}

void WaterbirdsParams::validate() const {
    if (top < 1) throw InputError("--top", "must be at least 1");
    if (lastLayers < 0) throw InputError("--last-layers", "must be 0 or more");
    if (protocol == WaterbirdsProtocol::VitDecompose && !heads.empty())
        throw InputError("--heads", "is textspan's head list; vit-decompose ranks its own components (drop --heads)");
}

std::vector<Component> textspanReplacedComponents(int layers, const std::vector<int>& headsPerLayer,
                                                  const std::vector<Component>& listed, int lastLayers) {
    std::vector<Component> out;
    auto add = [&](const Component& c) {
        if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
    };
    for (const Component& c : listed) add(c);
    for (int l = 0; l < layers - lastLayers; ++l)
        for (int h = 0; h < headsPerLayer[static_cast<std::size_t>(l)]; ++h) add({Component::Kind::Head, l, h});
    Component embed;
    embed.kind = Component::Kind::Embed;
    add(embed);
    for (int l = 0; l < layers; ++l) add({Component::Kind::Mlp, l, -1});
    return out;
}

at::Tensor predictClasses(const at::Tensor& outputs, const ZeroShotClassifier& classifier) {
    if (classifier.prompts.size(0) != static_cast<int64_t>(classifier.promptClass.size()) ||
        classifier.prompts.size(0) == 0)
        throw InputError("classes", "no prompts, or prompts without a class");
    const at::Tensor best = at::matmul(outputs.to(at::kFloat), classifier.prompts.to(at::kFloat).t()).argmax(1);
    const at::Tensor map =
        at::tensor(std::vector<int64_t>(classifier.promptClass.begin(), classifier.promptClass.end()));
    return map.index_select(0, best);
}

namespace {

// The heads a textspan run ablates when no list is given: the top `k` heads of the last layers
// by score(spurious) - score(core), as discoverSpuriousComponents ranks them.
std::vector<ComponentScore> discoverTextspanHeads(const CacheView& view, const at::Tensor& spurious,
                                                  const at::Tensor& core, int k, int lastLayers) {
    const int first = view.cache().numLayers() - lastLayers;
    const std::vector<ComponentScore> all =
        discoverSpuriousComponents(view, spurious, core, static_cast<int>(view.heads().size()), true);
    std::vector<ComponentScore> out;
    for (const ComponentScore& s : all)
        if (s.component.layer >= first && static_cast<int>(out.size()) < k) out.push_back(s);
    return out;
}

}  // namespace

at::Tensor LinearHead::predict(const at::Tensor& features) const {
    return at::addmm(bias, features.to(at::kFloat), weight.t()).argmax(1);
}

LinearHead trainLinearHead(const at::Tensor& features, const std::vector<int>& labels, int classes,
                           const LinearHeadParams& p) {
    const int64_t n = features.size(0), d = features.size(1);
    if (static_cast<int64_t>(labels.size()) != n || n == 0)
        throw InputError("linear head", "needs one label per training image");
    if (p.epochs < 1 || p.batch < 1) throw InputError("linear head", "epochs and batch must be at least 1");
    torch::manual_seed(p.seed);
    torch::nn::Linear linear(torch::nn::LinearOptions(d, classes).bias(true));
    torch::optim::Adam adam(linear->parameters(),
                            torch::optim::AdamOptions(p.learningRate).weight_decay(p.weightDecay));
    const at::Tensor x = features.to(at::kFloat).contiguous();
    const at::Tensor t = at::tensor(std::vector<int64_t>(labels.begin(), labels.end()));
    for (int e = 0; e < p.epochs; ++e)
        for (int64_t start = 0; start < n; start += p.batch) {
            const int64_t count = std::min<int64_t>(p.batch, n - start);
            const at::Tensor loss = torch::nn::functional::cross_entropy(linear->forward(x.narrow(0, start, count)),
                                                                         t.narrow(0, start, count));
            adam.zero_grad();
            loss.backward();
            adam.step();
        }
    return {linear->weight.detach().clone(), linear->bias.detach().clone()};
}

WaterbirdsResult runWaterbirds(const CacheView& view, const ZeroShotClassifier& classifier, const std::vector<int>& y,
                               const std::vector<int>& place, const WaterbirdsParams& params,
                               const at::Tensor& spurious, const at::Tensor& core, const LinearHead* head) {
    params.validate();
    if (head && params.protocol == WaterbirdsProtocol::TextSpan)
        throw InputError(
            "--aligner",
            "the textspan protocol is CLIP's (compute_use_specific_heads.py); use --protocol vit-decompose");
    at::NoGradGuard noGrad;
    WaterbirdsResult r;
    const DatasetCache& cache = view.cache();
    if (params.protocol == WaterbirdsProtocol::TextSpan) {
        if (cache.convention() != Convention::TextSpan)
            throw InputError(cache.dir(),
                             "is not a textspan-convention cache; the textspan protocol sums the reference's terms");
        if (static_cast<int>(cache.cachedLayers().size()) != cache.numLayers())
            throw InputError(cache.dir(),
                             "caches only some layers; the textspan protocol ablates the heads of every layer");
        std::vector<Component> listed = params.heads;
        if (listed.empty()) {
            r.ranked = discoverTextspanHeads(view, spurious, core, params.top, params.lastLayers);
            for (const ComponentScore& s : r.ranked) listed.push_back(s.component);
            r.headsDiscovered = true;
        }
        std::vector<int> perLayer;
        for (int l = 0; l < cache.numLayers(); ++l) perLayer.push_back(cache.headsIn(l));
        r.ablated = textspanReplacedComponents(cache.numLayers(), perLayer, listed, params.lastLayers);
    } else {
        r.ranked = discoverSpuriousComponents(view, spurious, core, params.top, false);
        for (const ComponentScore& s : r.ranked) r.ablated.push_back(s.component);
    }
    // The head reads the model's own representation; the zero-shot classifier the CLIP output.
    const auto termsOf = [&](const Component& c) { return head ? view.storedTerms(c).to(at::kFloat) : view.terms(c); };
    const auto predict = [&](const at::Tensor& out) {
        return head ? head->predict(out) : predictClasses(out, classifier);
    };
    at::Tensor out = head ? cache.output().to(at::kFloat) : view.output();
    r.before = waterbirdsAccuracy(predict(out), y, place);
    for (const Component& c : r.ablated) {
        const at::Tensor t = termsOf(c);
        out = out - t + t.mean(0, true);  // means over the evaluated images, as both references
    }
    r.after = waterbirdsAccuracy(predict(out), y, place);
    return r;
}

}  // namespace vitscope
