#include "analysis/cache.h"

#include "analysis/cache_files.h"

#include "analysis/labels.h"

#include "error.h"
#include "image/preprocess.h"
#include "io/file_util.h"
#include "io/npy.h"
#include "io/npy_appender.h"
#include "io/safetensors.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <set>
#include <thread>

namespace vitscope {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace cache_files {

std::vector<std::string> readLines(const std::string& path) { return splitLines(readFileText(path)); }

json readJson(const std::string& path) {
    try {
        return json::parse(readFileText(path));
    } catch (const json::exception& e) {
        throw FormatError(path, std::string("not valid JSON (") + e.what() + ")");
    }
}

void writeProgress(const std::string& dir, const Progress& p) {
    const json j{{"next_input", p.nextInput}, {"rows", p.rows}, {"paths_bytes", p.pathsBytes},
                 {"skipped_bytes", p.skippedBytes}, {"skipped", p.skipped}};
    writeFileAtomic(dir + "/progress.json", j.dump(1) + "\n");
}

Progress readProgress(const std::string& dir) {
    const std::string path = dir + "/progress.json";
    const json j = readJson(path);
    try {
        Progress p;
        p.nextInput = j.at("next_input").get<int64_t>();
        p.rows = j.at("rows").get<int64_t>();
        p.pathsBytes = j.at("paths_bytes").get<int64_t>();
        p.skippedBytes = j.at("skipped_bytes").get<int64_t>();
        p.skipped = j.at("skipped").get<int64_t>();
        if (p.nextInput < 0 || p.rows < 0 || p.rows > p.nextInput || p.pathsBytes < 0 || p.skippedBytes < 0)
            throw FormatError(path, "inconsistent counts");
        return p;
    } catch (const json::exception& e) {
        throw FormatError(path, std::string("missing or invalid field (") + e.what() + ")");
    }
}

}  // namespace cache_files

using namespace cache_files;

namespace {

constexpr int kFormatVersion = 1;
const char* const kOtherNames[] = {"embed", "attn_bias", "post_bias", "heads_not_cached"};

std::string sysError(const std::string& what) { return what + ": " + std::strerror(errno); }

// A text file that lines are appended to and that is truncated back to a recorded size on resume.
class LineAppender {
public:
    LineAppender(const std::string& path, int64_t resumeBytes) : m_path(path) {
        m_fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (m_fd < 0) throw IoError(path, sysError("cannot open for writing"));
        if (::ftruncate(m_fd, resumeBytes) != 0) throw IoError(path, sysError("cannot truncate"));
        ::lseek(m_fd, 0, SEEK_END);
        m_bytes = resumeBytes;
    }
    ~LineAppender() {
        if (m_fd >= 0) ::close(m_fd);
    }
    LineAppender(const LineAppender&) = delete;
    LineAppender& operator=(const LineAppender&) = delete;
    void add(const std::string& line) {
        const std::string s = line + "\n";
        if (::write(m_fd, s.data(), s.size()) != static_cast<ssize_t>(s.size())) throw IoError(m_path, sysError("cannot write"));
        m_bytes += static_cast<int64_t>(s.size());
    }
    void sync() {
        if (::fsync(m_fd) != 0) throw IoError(m_path, sysError("cannot flush"));
    }
    int64_t bytes() const { return m_bytes; }

private:
    std::string m_path;
    int m_fd = -1;
    int64_t m_bytes = 0;
};

bool isImageFile(const fs::path& p) {
    static const std::set<std::string> kExt{".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pnm"};
    std::string ext = p.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return kExt.count(ext) > 0;
}


json preprocessJson(const ImagePreprocess& p) {
    json j = {{"image_size", p.imageSize}, {"resize_shortest", p.resizeShortest}, {"mean", p.mean}, {"std", p.std}};
    // Stated only when set, so that caches made before these options existed still match.
    if (p.squash) j["squash"] = true;
    if (p.bilinear) j["resample"] = "bilinear";
    return j;
}

json settingsJson(const Model& model, const std::vector<int>& layers, const CacheBuildParams& params) {
    const Convention convention = params.convention;
    const VisionTower& v = model.vision;
    json s = {{"fingerprint", modelFingerprint(model)},
              {"layers", v.layers()},
              {"heads", v.heads()},
              {"embed_dim", v.embedDim()},
              {"cached_layers", layers},
              {"convention", conventionName(convention)},
              {"preprocess", preprocessJson(model.preprocess)}};
    if (convention == Convention::VitDecompose) s["from_block"] = {params.fromStage, params.fromBlock};
    // A reduced-precision build is another cache (fp32 ones keep the settings they had before).
    if (model.precision != Precision::Fp32) s["precision"] = precisionName(model.precision);
    if (v.pool.defined()) s["pool_heads"] = v.pool.heads;
    if (v.hierarchical()) s["heads_per_layer"] = headsPerLayer(v);
    if (v.maxvit.defined()) {
        int blocks = 0;
        for (const MaxVitStage& st : v.maxvit.stages) blocks += st.depth;
        s["conv_blocks"] = blocks;
    }
    return s;
}

}  // namespace

DecomposeOptions DatasetCache::decomposeOptions() const {
    DecomposeOptions o;
    o.convention = m_convention;
    o.fromStage = m_fromStage;
    o.fromBlock = m_fromBlock;
    return o;
}

void CacheBuildParams::validate() const {
    if (outDir.empty()) throw InputError("--out", "a cache directory is required");
    if (batch < 1 || batch > 4096) throw InputError("--batch", "must be within 1..4096, got " + std::to_string(batch));
    if (loaders < 0 || loaders > 256) throw InputError("--loaders", "must be within 0..256 (0: automatic), got " + std::to_string(loaders));
}

std::vector<std::string> listImages(const std::string& dirOrList) {
    std::error_code ec;
    const fs::path labels = fs::path(dirOrList) / "labels.csv";
    if (fs::is_directory(dirOrList, ec) && fs::is_regular_file(labels, ec)) {
        // A labelled dataset (the shapes world's layout: images/, masks/, labels.csv): the images
        // are the files its "file" column lists, not everything below the folder.
        const auto rows = readCsvTable(labels.string());
        if (!rows.empty() && rows.front().count("file")) {
            std::vector<std::string> out;
            for (const auto& row : rows) {
                const std::string& file = row.at("file");
                if (file.empty()) throw FormatError(labels.string(), "a row has an empty \"file\" cell");
                const fs::path p(file);
                out.push_back(p.is_absolute() ? p.string() : (fs::path(dirOrList) / p).string());
            }
            std::sort(out.begin(), out.end());
            out.erase(std::unique(out.begin(), out.end()), out.end());
            return out;
        }
        spdlog::warn("{} has no \"file\" column; reading every image below {}", labels.string(), dirOrList);
    }
    if (fs::is_directory(dirOrList, ec)) {
        std::vector<std::string> out;
        for (auto it = fs::recursive_directory_iterator(dirOrList, fs::directory_options::skip_permission_denied, ec);
             !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
            if (it->is_regular_file(ec) && isImageFile(it->path())) out.push_back(it->path().string());
        if (ec) throw IoError(dirOrList, "cannot list directory: " + ec.message());
        std::sort(out.begin(), out.end());
        if (out.empty()) throw InputError(dirOrList, "no image files (.png .jpg .jpeg .bmp .webp .tif .ppm) in the folder");
        return out;
    }
    if (!fs::exists(dirOrList, ec)) throw IoError(dirOrList, "no such file or directory");
    const fs::path base = fs::path(dirOrList).parent_path();
    std::vector<std::string> out;
    for (const std::string& line : readLines(dirOrList)) {
        if (line.empty() || line[0] == '#') continue;
        if (line.find('\0') != std::string::npos) throw FormatError(dirOrList, "not a text list of image paths");
        const fs::path p(line);
        out.push_back(p.is_absolute() ? p.string() : (base / p).string());
    }
    if (out.empty()) throw InputError(dirOrList, "the image list is empty");
    return out;
}

std::vector<int> parseLayerSelection(const std::string& spec, int layers) {
    std::vector<int> out;
    if (spec == "all") {
        for (int l = 0; l < layers; ++l) out.push_back(l);
        return out;
    }
    if (spec.rfind("last:", 0) == 0) {
        int k = 0;
        try {
            std::size_t used = 0;
            k = std::stoi(spec.substr(5), &used);
            if (used != spec.size() - 5) throw std::invalid_argument("trailing");
        } catch (const std::exception&) {
            throw InputError("--layers", "expected all or last:K, got '" + spec + "'");
        }
        if (k < 1 || k > layers)
            throw InputError("--layers", "last:" + std::to_string(k) + " is outside 1.." + std::to_string(layers));
        for (int l = layers - k; l < layers; ++l) out.push_back(l);
        return out;
    }
    throw InputError("--layers", "expected all or last:K, got '" + spec + "'");
}

std::string modelFingerprint(const Model& model) {
    if (model.info.weightsPath.empty()) return "unsaved";
    const MappedFile file(model.info.weightsPath);
    uint64_t h = 0xcbf29ce484222325ull;
    const uint8_t* p = file.data();
    for (std::size_t i = 0; i < file.size(); ++i) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, "fnv1a64:%016llx:%zu", static_cast<unsigned long long>(h), file.size());
    return buf;
}

namespace {

// One chunk of the input list, decoded and preprocessed: the readable images in input order, and
// the unreadable ones with the reason.
struct LoadedChunk {
    std::vector<at::Tensor> pixels;
    std::vector<std::string> paths;
    std::vector<std::pair<std::string, std::string>> skipped;
    int64_t next = 0;  // the input after the chunk
};

LoadedChunk loadChunk(const std::vector<std::string>& inputs, int64_t from, int64_t to, const ImagePreprocess& prep, int threads) {
    const int64_t n = to - from;
    std::vector<at::Tensor> pixels(static_cast<std::size_t>(n));
    std::vector<std::string> errors(static_cast<std::size_t>(n));
    auto work = [&](int64_t first) {
        for (int64_t i = first; i < n; i += threads) {
            const std::string& path = inputs[static_cast<std::size_t>(from + i)];
            try {
                pixels[static_cast<std::size_t>(i)] = preprocessImage(loadImageRgb(path), prep);
            } catch (const Error& e) {
                errors[static_cast<std::size_t>(i)] = e.what();
            } catch (const std::exception& e) {
                errors[static_cast<std::size_t>(i)] = path + ": " + e.what();
            }
        }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < threads && t < n; ++t) pool.emplace_back(work, t);
    work(0);
    for (std::thread& t : pool) t.join();
    LoadedChunk chunk;
    chunk.next = to;
    for (int64_t i = 0; i < n; ++i) {
        const std::string& path = inputs[static_cast<std::size_t>(from + i)];
        if (pixels[static_cast<std::size_t>(i)].defined()) {
            chunk.pixels.push_back(std::move(pixels[static_cast<std::size_t>(i)]));
            chunk.paths.push_back(path);
        } else {
            chunk.skipped.emplace_back(path, errors[static_cast<std::size_t>(i)]);
        }
    }
    return chunk;
}

// Decoding threads: on a GPU the loaders are what keeps it fed; on the CPU the model's own
// threads use the cores, and one loader overlaps decoding with the decomposition.
int defaultLoaders(const at::Device& device) {
    if (!device.is_cuda()) return 1;
    return static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 16u));
}

// `t` as `dtype` on the CPU: converted where it lives (halving what crosses the bus for fp16), then
// one copy, into pinned memory when it comes from a GPU.
at::Tensor toHost(const at::Tensor& t, at::ScalarType dtype) {
    const at::Tensor converted = t.to(dtype).contiguous();
    if (converted.is_cpu()) return converted;
    at::Tensor host = at::empty(converted.sizes(), at::TensorOptions().dtype(dtype).pinned_memory(true));
    host.copy_(converted);
    return host;
}

}  // namespace

CacheBuildResult buildCache(const Model& model, const std::vector<std::string>& images, const CacheBuildParams& params,
                            const JobContext& job) {
    params.validate();
    if (images.empty()) throw InputError("images", "no images to cache");
    const VisionTower& v = model.vision;
    const int L = v.layers(), H = v.heads(), E = v.embedDim();
    const std::vector<int> layers = parseLayerSelection(params.layers, L);
    const int Lc = static_cast<int>(layers.size());
    const std::string& dir = params.outDir;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw IoError(dir, "cannot create directory: " + ec.message());

    const json settings = settingsJson(model, layers, params);
    const std::string manifestPath = dir + "/manifest.json";
    CacheBuildResult result;
    Progress progress;
    std::vector<std::string> inputs = images;
    if (fs::exists(manifestPath)) {
        const json old = readJson(manifestPath);
        if (!old.contains("settings") || old["settings"] != settings)
            throw InputError(dir, "holds a cache made with another model or other settings; choose another --out or delete it");
        const std::vector<std::string> oldInputs = readLines(dir + "/inputs.txt");
        if (oldInputs != images)
            throw InputError(dir, "holds a cache of another image list (" + std::to_string(oldInputs.size()) +
                                      " images); choose another --out or delete it");
        result.resumed = true;
        if (old.value("complete", false)) {
            const Progress done = readProgress(dir);
            result.rows = done.rows;
            result.skipped = done.skipped;
            result.inputs = static_cast<int64_t>(inputs.size());
            return result;
        }
        progress = readProgress(dir);
        if (progress.nextInput > static_cast<int64_t>(inputs.size())) throw FormatError(dir + "/progress.json", "is past the end of the image list");
    } else {
        std::size_t entries = 0;
        for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) ++entries;
        if (entries > 0) throw InputError(dir, "is not empty and holds no vitscope cache; choose an empty or new directory");
        std::string list;
        for (const std::string& p : inputs) list += p + "\n";
        writeFileAtomic(dir + "/inputs.txt", list);
        writeProgress(dir, progress);
        const json manifest{{"format", "vitscope-cache"}, {"version", kFormatVersion}, {"complete", false},
                            {"model_name", model.info.weightsPath}, {"model_spec", params.modelSpec},
                            {"family", model.info.family}, {"precision", precisionName(model.precision)},
                            {"settings", settings}, {"inputs", inputs.size()}};
        writeFileAtomic(manifestPath, manifest.dump(1) + "\n");
    }

    NpyAppender headsFile(dir + "/heads.npy", DType::F16, {Lc, H, E}, progress.rows, kNpyHeaderBytes);
    NpyAppender mlpsFile(dir + "/mlps.npy", DType::F16, {L, E}, progress.rows, kNpyHeaderBytes);
    NpyAppender otherFile(dir + "/other.npy", DType::F16, {4, E}, progress.rows, kNpyHeaderBytes);
    NpyAppender outputFile(dir + "/output.npy", DType::F32, {E}, progress.rows, kNpyHeaderBytes);
    // Attention-pooled models (SigLIP): the pooling heads, pool.bias and pool.mlp; pool.mlp also
    // completes the encoder-level rows (heads + mlps + other + pool.mlp = output).
    const int P = v.pool.defined() ? v.pool.heads : 0;
    std::unique_ptr<NpyAppender> poolFile;
    if (P > 0) poolFile = std::make_unique<NpyAppender>(dir + "/pool.npy", DType::F16, std::vector<int64_t>{P + 2, E}, progress.rows);
    // MaxViT: each block's MBConv branch.
    const int64_t K = settings.value("conv_blocks", 0);
    std::unique_ptr<NpyAppender> convsFile;
    if (K > 0) convsFile = std::make_unique<NpyAppender>(dir + "/convs.npy", DType::F16, std::vector<int64_t>{K, E}, progress.rows);
    LineAppender pathsFile(dir + "/paths.txt", progress.pathsBytes);
    LineAppender skippedFile(dir + "/skipped.txt", progress.skippedBytes);

    const at::Tensor layerIndex = at::tensor(std::vector<int64_t>(layers.begin(), layers.end()), at::kLong);
    std::vector<bool> cachedMask(static_cast<std::size_t>(L), false);
    for (int l : layers) cachedMask[static_cast<std::size_t>(l)] = true;
    std::vector<int64_t> uncached;
    for (int l = 0; l < L; ++l)
        if (!cachedMask[static_cast<std::size_t>(l)]) uncached.push_back(l);
    const at::Tensor uncachedIndex = at::tensor(uncached, at::kLong);

    at::NoGradGuard noGrad;
    const auto t0 = std::chrono::steady_clock::now();
    const int64_t total = static_cast<int64_t>(inputs.size());
    const int64_t startInput = progress.nextInput;
    const at::Device device = v.device();
    const int loaders = params.loaders > 0 ? params.loaders : defaultLoaders(device);
    // Data first, then the record that says it is there. Syncing every chunk cost up to ~8% of a
    // small model's throughput, so the record is renewed every kSyncSeconds (and at the end or on
    // cancellation): a kill -9 loses at most that much finished work, which the resume redoes.
    constexpr double kSyncSeconds = 2.0;
    auto lastSync = std::chrono::steady_clock::now();
    // Three stages overlap: the loaders decode chunk k + 1 while the model decomposes chunk k and a
    // writer appends chunk k - 1 to the files. Chunks are fixed runs of `batch` inputs (unreadable
    // ones dropped), so a build and its resumptions cut the list at the same places.
    std::future<void> writing;
    auto finishWriting = [&] {
        if (writing.valid()) writing.get();  // rethrows a write error
    };
    auto checkpoint = [&] {
        finishWriting();
        for (NpyAppender* f : {&headsFile, &mlpsFile, &otherFile, &outputFile, poolFile.get(), convsFile.get()})
            if (f) f->sync();
        pathsFile.sync();
        skippedFile.sync();
        progress.pathsBytes = pathsFile.bytes();
        progress.skippedBytes = skippedFile.bytes();
        writeProgress(dir, progress);
        lastSync = std::chrono::steady_clock::now();
    };
    auto load = [&](int64_t from) {
        return std::async(std::launch::async, loadChunk, std::cref(inputs), from, std::min<int64_t>(total, from + params.batch),
                          std::cref(model.preprocess), loaders);
    };
    std::future<LoadedChunk> pending = load(progress.nextInput);
    while (progress.nextInput < total) {
        if (job.cancelled()) {
            checkpoint();
            result.cancelled = true;
            break;
        }
        LoadedChunk chunk = pending.get();
        if (chunk.next < total) pending = load(chunk.next);
        for (const auto& [path, why] : chunk.skipped) {
            spdlog::warn("skipped {}", why);
            skippedFile.add(path + "\t" + why);
            ++progress.skipped;
        }
        if (!chunk.pixels.empty()) {
            DecomposeOptions decOptions;
            decOptions.convention = params.convention;
            decOptions.fromStage = params.fromStage;
            decOptions.fromBlock = params.fromBlock;
            const Decomposition dec = decomposeImages(model, at::stack(chunk.pixels).to(device), decOptions);
            const at::Tensor heads = dec.heads.index_select(1, layerIndex.to(device));  // [B, Lc, H, E]
            const at::Tensor rest = uncached.empty() ? at::zeros_like(dec.embed)
                                                     : dec.heads.index_select(1, uncachedIndex.to(device)).sum({1, 2});
            // Swin's patch mergings' offsets and MaxViT's shortcut biases join the attention biases'
            // slot (components.h).
            const at::Tensor biases = dec.stageBias.defined() ? dec.attnBias.sum(1) + dec.stageBias.sum(1) : dec.attnBias.sum(1);
            const at::Tensor other = at::stack({dec.embed, biases, dec.postBias, rest}, 1);  // [B, 4, E]
            // Converted on the device, one copy each to (pinned, on CUDA) host memory.
            std::vector<at::Tensor> rows{toHost(heads, at::kHalf), toHost(dec.mlps, at::kHalf), toHost(other, at::kHalf),
                                         toHost(dec.output, at::kFloat),
                                         poolFile ? toHost(poolTermsByComponent(dec, nullptr), at::kHalf) : at::Tensor(),
                                         convsFile ? toHost(dec.convs, at::kHalf) : at::Tensor()};
            finishWriting();
            writing = std::async(std::launch::async, [&, rows = std::move(rows), paths = std::move(chunk.paths)] {
                headsFile.append(rows[0]);
                mlpsFile.append(rows[1]);
                otherFile.append(rows[2]);
                outputFile.append(rows[3]);
                if (poolFile) poolFile->append(rows[4]);
                if (convsFile) convsFile->append(rows[5]);
                for (const std::string& p : paths) pathsFile.add(p);
            });
            progress.rows += static_cast<int64_t>(chunk.pixels.size());
        }
        progress.nextInput = chunk.next;
        if (progress.nextInput >= total ||
            std::chrono::duration<double>(std::chrono::steady_clock::now() - lastSync).count() >= kSyncSeconds)
            checkpoint();
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        JobProgress jp;
        jp.stage = "caching images";
        jp.done = progress.nextInput;
        jp.total = total;
        jp.perSecond = secs > 0 ? static_cast<double>(progress.nextInput - startInput) / secs : 0;
        jp.etaSeconds = jp.perSecond > 0 ? static_cast<double>(total - progress.nextInput) / jp.perSecond : 0;
        job.report(jp);
    }
    if (pending.valid()) pending.wait();  // a prefetch past a cancellation: its result is dropped
    finishWriting();
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    result.rows = progress.rows;
    result.skipped = progress.skipped;
    result.inputs = total;
    result.imagesPerSecond = result.seconds > 0 ? static_cast<double>(progress.nextInput - startInput) / result.seconds : 0;
    if (result.cancelled) return result;
    if (progress.rows == 0) throw InputError(dir, "none of the " + std::to_string(total) + " images could be read (see skipped.txt)");

    headsFile.finish(progress.rows);
    mlpsFile.finish(progress.rows);
    otherFile.finish(progress.rows);
    outputFile.finish(progress.rows);
    if (poolFile) poolFile->finish(progress.rows);
    if (convsFile) convsFile->finish(progress.rows);
    json manifest = readJson(manifestPath);
    manifest["complete"] = true;
    manifest["rows"] = progress.rows;
    manifest["skipped"] = progress.skipped;
    manifest["other_terms"] = std::vector<std::string>(std::begin(kOtherNames), std::end(kOtherNames));
    writeFileAtomic(manifestPath, manifest.dump(1) + "\n");
    return result;
}

namespace {

at::Tensor mapNpy(const std::shared_ptr<MappedFile>& file, DType want, const std::vector<int64_t>& shape) {
    const NpyHeader h = parseNpyHeader(file->data(), file->size(), file->path());
    if (h.dtype != want) throw FormatError(file->path(), "unexpected dtype for a vitscope cache array");
    if (h.shape != shape) {
        std::string s;
        for (int64_t d : h.shape) s += (s.empty() ? "" : "x") + std::to_string(d);
        std::string w;
        for (int64_t d : shape) w += (w.empty() ? "" : "x") + std::to_string(d);
        throw FormatError(file->path(), "shape " + s + " does not match the manifest (" + w + ")");
    }
    void* data = const_cast<uint8_t*>(file->data() + h.dataOffset);
    return at::from_blob(data, shape, at::TensorOptions().dtype(want == DType::F16 ? at::kHalf : at::kFloat));
}

}  // namespace

DatasetCache::DatasetCache(const std::string& dir) : m_dir(dir) {
    const std::string manifestPath = dir + "/manifest.json";
    if (!fs::exists(manifestPath)) throw IoError(dir, "not a vitscope cache (no manifest.json)");
    const json m = readJson(manifestPath);
    try {
        if (m.at("format").get<std::string>() != "vitscope-cache") throw FormatError(manifestPath, "not a vitscope cache manifest");
        if (m.at("version").get<int>() != kFormatVersion)
            throw FormatError(manifestPath, "cache format version " + std::to_string(m.at("version").get<int>()) + " is not supported");
        if (!m.at("complete").get<bool>()) {
            const Progress p = readProgress(dir);
            throw InputError(dir, "the cache is incomplete (" + std::to_string(p.nextInput) + " of " +
                                      std::to_string(m.at("inputs").get<int64_t>()) +
                                      " images); run cache build again with the same arguments to resume");
        }
        const json& s = m.at("settings");
        m_fingerprint = s.at("fingerprint").get<std::string>();
        m_layers = s.at("layers").get<int>();
        m_heads = s.at("heads").get<int>();
        m_embed = s.at("embed_dim").get<int>();
        m_cachedLayers = s.at("cached_layers").get<std::vector<int>>();
        m_convention = parseConvention(s.at("convention").get<std::string>());
        if (s.contains("from_block")) {
            m_fromStage = s.at("from_block").at(0).get<int>();
            m_fromBlock = s.at("from_block").at(1).get<int>();
        }
        m_rows = m.at("rows").get<int64_t>();
        m_modelName = m.value("model_name", "");
        m_modelSpec = m.value("model_spec", "");
        m_precision = m.value("precision", "fp32");
        m_poolHeads = s.value("pool_heads", 0);
        if (s.contains("heads_per_layer")) m_headsPerLayer = s.at("heads_per_layer").get<std::vector<int>>();
        m_convs = s.value("conv_blocks", 0);
    } catch (const json::exception& e) {
        throw FormatError(manifestPath, std::string("missing or invalid field (") + e.what() + ")");
    }
    if (m_layers < 1 || m_heads < 1 || m_embed < 1 || m_rows < 1 || m_cachedLayers.empty() || m_poolHeads < 0 || m_poolHeads > 4096)
        throw FormatError(manifestPath, "invalid sizes");
    for (int l : m_cachedLayers)
        if (l < 0 || l >= m_layers) throw FormatError(manifestPath, "cached layer " + std::to_string(l) + " is out of range");
    if (!m_headsPerLayer.empty() && static_cast<int>(m_headsPerLayer.size()) != m_layers)
        throw FormatError(manifestPath, "heads_per_layer has " + std::to_string(m_headsPerLayer.size()) + " entries for " +
                                            std::to_string(m_layers) + " layers");
    for (int h : m_headsPerLayer)
        if (h < 1 || h > m_heads) throw FormatError(manifestPath, "heads_per_layer holds " + std::to_string(h) + " heads");
    m_paths = readLines(dir + "/paths.txt");
    if (static_cast<int64_t>(m_paths.size()) != m_rows)
        throw FormatError(dir + "/paths.txt", "holds " + std::to_string(m_paths.size()) + " paths for " + std::to_string(m_rows) + " rows");
    auto open = [&](const char* name) {
        m_files.push_back(std::make_shared<MappedFile>(dir + "/" + name));
        return m_files.back();
    };
    const int64_t Lc = static_cast<int64_t>(m_cachedLayers.size());
    m_headsT = mapNpy(open("heads.npy"), DType::F16, {m_rows, Lc, m_heads, m_embed});
    m_mlpsT = mapNpy(open("mlps.npy"), DType::F16, {m_rows, m_layers, m_embed});
    m_otherT = mapNpy(open("other.npy"), DType::F16, {m_rows, 4, m_embed});
    m_outputT = mapNpy(open("output.npy"), DType::F32, {m_rows, m_embed});
    if (m_poolHeads > 0) m_poolT = mapNpy(open("pool.npy"), DType::F16, {m_rows, m_poolHeads + 2, m_embed});
    if (m_convs < 0 || m_convs > 4096) throw FormatError(manifestPath, "invalid conv_blocks");
    if (m_convs > 0) m_convsT = mapNpy(open("convs.npy"), DType::F16, {m_rows, m_convs, m_embed});
}

DatasetCache::~DatasetCache() = default;

at::Tensor DatasetCache::heads() const { return m_headsT; }

int DatasetCache::headsIn(int layer) const {
    return m_headsPerLayer.empty() ? m_heads : m_headsPerLayer.at(static_cast<std::size_t>(layer));
}
at::Tensor DatasetCache::mlps() const { return m_mlpsT; }
at::Tensor DatasetCache::other() const { return m_otherT; }
at::Tensor DatasetCache::output() const { return m_outputT; }
at::Tensor DatasetCache::pool() const { return m_poolT; }
at::Tensor DatasetCache::convs() const { return m_convsT; }

int DatasetCache::cachedIndex(int layer) const {
    for (std::size_t i = 0; i < m_cachedLayers.size(); ++i)
        if (m_cachedLayers[i] == layer) return static_cast<int>(i);
    throw InputError("layer " + std::to_string(layer), "is not in the cache (cached layers: " +
                                                         std::to_string(m_cachedLayers.front()) + ".." +
                                                         std::to_string(m_cachedLayers.back()) + ")");
}

void DatasetCache::checkModel(const Model& model) const {
    const std::string fp = modelFingerprint(model);
    if (fp != m_fingerprint)
        throw InputError(m_dir, "was built from another model (" + m_modelName + ", " + m_fingerprint + "), not " +
                                    model.info.weightsPath + " (" + fp + ")");
}

}  // namespace vitscope
