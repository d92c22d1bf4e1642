#include "analysis/cache_shards.h"

#include "analysis/cache_files.h"
#include "error.h"
#include "io/file_util.h"
#include "io/npy.h"
#include "io/safetensors.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <regex>

namespace vitscope {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace cache_files;

namespace {

// A non-negative integer variable, or -1 when unset; InputError when set to anything else.
int64_t intVariable(const EnvironmentLookup& env, const char* name) {
    const char* v = env(name);
    if (!v || !*v) return -1;
    char* end = nullptr;
    errno = 0;
    const long long x = std::strtoll(v, &end, 10);
    if (errno != 0 || *end != '\0' || x < 0) throw InputError(name, std::string("is '") + v + "', not a non-negative integer");
    return x;
}

ShardSpec checked(ShardSpec s, const std::string& where) {
    if (s.count < 1 || s.count > 100000) throw InputError(where, "gives " + std::to_string(s.count) + " shards (1..100000)");
    if (s.index < 0 || s.index >= s.count)
        throw InputError(where, "gives shard " + std::to_string(s.index) + ", outside 0.." + std::to_string(s.count - 1));
    return s;
}

std::string shardsDir(const std::string& cache) { return cache + "/shards"; }
std::string recordPath(const std::string& cache, int index, int count) { return shardsDir(cache) + "/" + shardName(index, count) + ".json"; }

struct ShardRecord {
    int index = 0, count = 0, batch = 0;
    int64_t from = 0, to = 0, total = 0;
    std::string listHash, launcher;
};

json recordJson(const ShardRecord& r) {
    return {{"format", "vitscope-cache-shard"}, {"index", r.index}, {"count", r.count}, {"from", r.from}, {"to", r.to},
            {"inputs", r.total}, {"list_hash", r.listHash}, {"batch", r.batch}, {"launcher", r.launcher}};
}

ShardRecord readRecord(const std::string& path) {
    const json j = readJson(path);
    try {
        if (j.at("format").get<std::string>() != "vitscope-cache-shard") throw FormatError(path, "not a vitscope shard record");
        ShardRecord r;
        r.index = j.at("index").get<int>();
        r.count = j.at("count").get<int>();
        r.from = j.at("from").get<int64_t>();
        r.to = j.at("to").get<int64_t>();
        r.total = j.at("inputs").get<int64_t>();
        r.batch = j.at("batch").get<int>();
        r.listHash = j.at("list_hash").get<std::string>();
        r.launcher = j.value("launcher", "");
        if (r.count < 1 || r.index < 0 || r.index >= r.count || r.from < 0 || r.to < r.from || r.to > r.total || r.batch < 1)
            throw FormatError(path, "inconsistent fields");
        return r;
    } catch (const json::exception& e) {
        throw FormatError(path, std::string("missing or invalid field (") + e.what() + ")");
    }
}

// Shard records in CACHE/shards, by count then index.
std::vector<ShardRecord> findRecords(const std::string& cache) {
    std::vector<ShardRecord> out;
    std::error_code ec;
    static const std::regex kName(R"((\d+)-of-(\d+)\.json)");
    for (auto it = fs::directory_iterator(shardsDir(cache), ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (std::regex_match(name, kName)) out.push_back(readRecord(it->path().string()));
    }
    std::sort(out.begin(), out.end(), [](const ShardRecord& a, const ShardRecord& b) {
        return a.count != b.count ? a.count < b.count : a.index < b.index;
    });
    return out;
}

std::string sysError(const std::string& what) { return what + ": " + std::strerror(errno); }

// Appends `length` bytes of `in` from `offset` to the open descriptor `out` (in the kernel where
// it can).
void appendFileRange(int out, const std::string& in, uint64_t offset, uint64_t length, const std::string& outPath) {
    const int fd = ::open(in.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw IoError(in, sysError("cannot open"));
    loff_t pos = static_cast<loff_t>(offset);
    uint64_t left = length;
    std::vector<char> buffer;
    while (left > 0) {
        const ssize_t n = ::copy_file_range(fd, &pos, out, nullptr, std::min<uint64_t>(left, 1u << 30), 0);
        if (n > 0) {
            left -= static_cast<uint64_t>(n);
            continue;
        }
        if (n == 0) {
            ::close(fd);
            throw FormatError(in, "ends early");
        }
        if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP) {
            ::close(fd);
            throw IoError(outPath, sysError("cannot write"));
        }
        // No kernel copy between these files: read and write.
        buffer.resize(8u << 20);
        const ssize_t r = ::pread(fd, buffer.data(), std::min<uint64_t>(left, buffer.size()), pos);
        if (r <= 0) {
            ::close(fd);
            throw IoError(in, r == 0 ? std::string("ends early") : sysError("cannot read"));
        }
        for (ssize_t done = 0; done < r;) {
            const ssize_t w = ::write(out, buffer.data() + done, static_cast<std::size_t>(r - done));
            if (w < 0) {
                ::close(fd);
                throw IoError(outPath, sysError("cannot write"));
            }
            done += w;
        }
        pos += r;
        left -= static_cast<uint64_t>(r);
    }
    ::close(fd);
}

}  // namespace

// One merged array: the fixed-size header for `rows` rows, then each shard's data in order.
uint64_t mergeArray(const std::vector<std::string>& shardDirs, const std::string& name, const std::string& outPath, int64_t rows) {
    NpyHeader first;
    std::vector<std::pair<std::string, uint64_t>> parts;  // file, data bytes
    uint64_t rowBytes = 0;
    for (std::size_t i = 0; i < shardDirs.size(); ++i) {
        const std::string path = shardDirs[i] + "/" + name;
        const MappedFile file(path);
        const NpyHeader h = parseNpyHeader(file.data(), file.size(), path);
        if (h.dataOffset != kNpyHeaderBytes) throw FormatError(path, "was not written by cache build (header size)");
        const std::vector<int64_t> row(h.shape.begin() + 1, h.shape.end());
        if (i == 0) {
            first = h;
            rowBytes = file.size() > kNpyHeaderBytes && h.shape[0] > 0 ? (file.size() - kNpyHeaderBytes) / static_cast<uint64_t>(h.shape[0]) : 0;
        } else if (h.dtype != first.dtype || row != std::vector<int64_t>(first.shape.begin() + 1, first.shape.end())) {
            throw InputError(path, "holds rows of another shape or type than the first shard's");
        }
        parts.emplace_back(path, file.size() - kNpyHeaderBytes);
    }
    std::vector<int64_t> shape = first.shape;
    shape[0] = rows;
    const std::string header = npyHeaderBytes(first.dtype, shape, kNpyHeaderBytes);
    if (header.size() != kNpyHeaderBytes) throw InputError(outPath, "npy header does not fit its fixed size");
    const int out = ::open(outPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) throw IoError(outPath, sysError("cannot create"));
    uint64_t written = 0;
    try {
        if (::write(out, header.data(), header.size()) != static_cast<ssize_t>(header.size())) throw IoError(outPath, sysError("cannot write"));
        for (const auto& [path, bytes] : parts) {
            appendFileRange(out, path, kNpyHeaderBytes, bytes, outPath);
            written += bytes;
        }
        if (rowBytes > 0 && written != rowBytes * static_cast<uint64_t>(rows))
            throw FormatError(outPath, "the shards' " + name + " hold " + std::to_string(written) + " bytes for " + std::to_string(rows) + " rows");
        if (::fsync(out) != 0) throw IoError(outPath, sysError("cannot flush"));
    } catch (...) {
        ::close(out);
        throw;
    }
    ::close(out);
    return written;
}

std::string concatenated(const std::vector<std::string>& shardDirs, const std::string& name) {
    std::string out;
    for (const std::string& d : shardDirs)
        if (fs::exists(d + "/" + name)) out += readFileText(d + "/" + name);
    return out;
}


ShardSpec resolveShard(const std::string& flag, int numShards, const EnvironmentLookup& env) {
    if (!flag.empty()) {
        static const std::regex kFlag(R"((\d{1,6})/(\d{1,6}))");
        std::smatch m;
        if (!std::regex_match(flag, m, kFlag)) throw InputError("--shard", "is '" + flag + "', expected I/N (e.g. 0/4)");
        return checked({std::stoi(m[1]), std::stoi(m[2]), "--shard " + flag}, "--shard");
    }
    if (numShards < 0) throw InputError("--num-shards", "must be positive");
    const int64_t task = intVariable(env, "SLURM_ARRAY_TASK_ID");
    if (task >= 0) {
        const int64_t count = intVariable(env, "SLURM_ARRAY_TASK_COUNT");
        const int64_t min = std::max<int64_t>(0, intVariable(env, "SLURM_ARRAY_TASK_MIN"));
        if (count < 1) throw InputError("SLURM_ARRAY_TASK_COUNT", "is not set beside SLURM_ARRAY_TASK_ID");
        if (task < min) throw InputError("SLURM_ARRAY_TASK_ID", "is below SLURM_ARRAY_TASK_MIN");
        return checked({static_cast<int>(task - min), static_cast<int>(count),
                        "SLURM_ARRAY_TASK_ID=" + std::to_string(task) + " (min " + std::to_string(min) + ", count " + std::to_string(count) + ")"},
                       "SLURM_ARRAY_TASK_ID");
    }
    const int64_t completion = intVariable(env, "JOB_COMPLETION_INDEX");
    if (completion >= 0) {
        if (numShards < 1) throw InputError("JOB_COMPLETION_INDEX", "is set: pass --num-shards N (the indexed job's completions)");
        return checked({static_cast<int>(completion), numShards, "JOB_COMPLETION_INDEX=" + std::to_string(completion) + " of --num-shards " +
                                                                     std::to_string(numShards)},
                       "JOB_COMPLETION_INDEX");
    }
    const int64_t rank = intVariable(env, "RANK");
    if (rank >= 0) {
        const int64_t world = intVariable(env, "WORLD_SIZE");
        if (world < 1) throw InputError("WORLD_SIZE", "is not set beside RANK");
        return checked({static_cast<int>(rank), static_cast<int>(world), "RANK=" + std::to_string(rank) + " of WORLD_SIZE=" + std::to_string(world)},
                       "RANK");
    }
    if (numShards > 0) throw InputError("--num-shards", "is given but no launcher variable (SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX, RANK) is set; use --shard I/N");
    return {};
}

ShardSpec resolveShard(const std::string& flag, int numShards) {
    return resolveShard(flag, numShards, [](const char* name) { return static_cast<const char*>(std::getenv(name)); });
}

std::pair<int64_t, int64_t> shardRange(int64_t inputs, int batch, int index, int count) {
    const int64_t chunks = (inputs + batch - 1) / batch;
    const int64_t first = chunks * index / count, last = chunks * (index + 1) / count;
    return {std::min(inputs, first * batch), std::min(inputs, last * batch)};
}

std::string shardName(int index, int count) { return std::to_string(index) + "-of-" + std::to_string(count); }

std::string imageListHash(const std::vector<std::string>& images) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (const std::string& line : images) {
        for (unsigned char c : line + "\n") {
            h ^= c;
            h *= 0x100000001b3ull;
        }
    }
    char buf[40];
    std::snprintf(buf, sizeof buf, "fnv1a64:%016llx", static_cast<unsigned long long>(h));
    return buf;
}

CacheBuildResult buildCacheShard(const Model& model, const std::vector<std::string>& images, const CacheBuildParams& params,
                                 const ShardSpec& shard, const JobContext& job) {
    params.validate();
    if (!shard.defined()) throw InputError("--shard", "no shard given");
    if (images.empty()) throw InputError("images", "no images to cache");
    ShardRecord r;
    r.index = shard.index;
    r.count = shard.count;
    r.batch = params.batch;
    r.total = static_cast<int64_t>(images.size());
    std::tie(r.from, r.to) = shardRange(r.total, params.batch, shard.index, shard.count);
    r.listHash = imageListHash(images);
    r.launcher = shard.source;
    const std::string record = recordPath(params.outDir, shard.index, shard.count);
    if (fs::exists(params.outDir + "/manifest.json"))
        throw InputError(params.outDir, "is a whole cache already; shards go into a new directory");
    std::error_code ec;
    fs::create_directories(shardsDir(params.outDir), ec);
    if (ec) throw IoError(shardsDir(params.outDir), "cannot create directory: " + ec.message());
    if (fs::exists(record)) {
        const ShardRecord old = readRecord(record);
        if (old.listHash != r.listHash || old.total != r.total || old.batch != r.batch)
            throw InputError(record, "was started with another image list or batch (" + std::to_string(old.total) + " images, batch " +
                                         std::to_string(old.batch) + "); use the same arguments or another --out");
    }
    writeFileAtomic(record, recordJson(r).dump(1) + "\n");
    spdlog::info("shard {} of {} ({}): inputs [{}, {}) of {}", shard.index, shard.count, shard.source, r.from, r.to, r.total);
    CacheBuildResult result;
    result.inputs = r.to - r.from;
    if (r.from == r.to) return result;  // more shards than chunks: nothing to do
    CacheBuildParams p = params;
    p.outDir = shardsDir(params.outDir) + "/" + shardName(shard.index, shard.count);
    const std::vector<std::string> part(images.begin() + r.from, images.begin() + r.to);
    return buildCache(model, part, p, job);
}

CacheStatus cacheStatus(const std::string& dir) {
    if (!fs::is_directory(dir)) throw IoError(dir, "no such directory");
    CacheStatus st;
    if (fs::exists(dir + "/manifest.json")) {
        const json m = readJson(dir + "/manifest.json");
        st.complete = m.value("complete", false);
        st.rows = st.complete ? m.value("rows", int64_t{0}) : readProgress(dir).rows;
    }
    std::map<int, std::vector<bool>> seen;
    for (const ShardRecord& r : findRecords(dir)) {
        ShardState s;
        s.index = r.index;
        s.count = r.count;
        s.from = r.from;
        s.to = r.to;
        s.launcher = r.launcher;
        const std::string sub = shardsDir(dir) + "/" + shardName(r.index, r.count);
        if (r.from == r.to) {
            s.complete = s.started = true;
        } else if (fs::exists(sub + "/manifest.json")) {
            s.started = true;
            const Progress p = readProgress(sub);
            s.done = p.nextInput;
            s.rows = p.rows;
            s.complete = readJson(sub + "/manifest.json").value("complete", false);
        }
        st.shards.push_back(s);
        auto& flags = seen[r.count];
        flags.resize(static_cast<std::size_t>(r.count), false);
        flags[static_cast<std::size_t>(r.index)] = true;
    }
    for (const auto& [count, flags] : seen)
        for (int i = 0; i < count; ++i)
            if (!flags[static_cast<std::size_t>(i)]) st.missing.push_back(shardName(i, count));
    return st;
}

MergeResult mergeCacheShards(const std::string& dir, int count) {
    const auto t0 = std::chrono::steady_clock::now();
    if (!fs::is_directory(shardsDir(dir))) throw InputError(dir, "holds no shards (no shards/ folder): build them with cache build --shard I/N");
    std::vector<ShardRecord> records = findRecords(dir);
    if (count == 0) {
        std::vector<int> counts;
        for (const ShardRecord& r : records) counts.push_back(r.count);
        counts.erase(std::unique(counts.begin(), counts.end()), counts.end());
        if (counts.empty()) throw InputError(shardsDir(dir), "holds no shard records");
        if (counts.size() > 1) throw InputError(shardsDir(dir), "holds shards of several counts; pass --shards N");
        count = counts[0];
    }
    records.erase(std::remove_if(records.begin(), records.end(), [&](const ShardRecord& r) { return r.count != count; }), records.end());
    std::vector<std::string> missing;
    for (int i = 0, k = 0; i < count; ++i) {
        if (k < static_cast<int>(records.size()) && records[static_cast<std::size_t>(k)].index == i) ++k;
        else missing.push_back(std::to_string(i));
    }
    if (!missing.empty()) {
        std::string list;
        for (const std::string& m : missing) list += (list.empty() ? "" : ", ") + m;
        throw InputError(shardsDir(dir), "shard(s) " + list + " of " + std::to_string(count) + " are missing (never started)");
    }
    MergeResult result;
    result.shards = count;
    const ShardRecord& head = records.front();
    std::vector<std::string> dirs;  // shards with inputs, in order
    json settings, firstManifest;
    int64_t expectFrom = 0;
    for (const ShardRecord& r : records) {
        const std::string name = shardName(r.index, r.count);
        if (r.listHash != head.listHash || r.total != head.total || r.batch != head.batch)
            throw InputError(recordPath(dir, r.index, r.count), "was built from another image list or batch than shard 0");
        if (r.from != expectFrom || r.to != shardRange(r.total, r.batch, r.index, r.count).second)
            throw InputError(recordPath(dir, r.index, r.count), "covers inputs [" + std::to_string(r.from) + ", " + std::to_string(r.to) + "), not its part of the list");
        expectFrom = r.to;
        if (r.from == r.to) continue;
        const std::string sub = shardsDir(dir) + "/" + name;
        if (!fs::exists(sub + "/manifest.json")) throw InputError(sub, "shard " + name + " has not started; run its build");
        const json m = readJson(sub + "/manifest.json");
        if (!m.value("complete", false)) {
            const Progress p = readProgress(sub);
            throw InputError(sub, "shard " + name + " is incomplete (" + std::to_string(p.nextInput) + " of " + std::to_string(r.to - r.from) +
                                      " images); run its build again to resume");
        }
        if (dirs.empty()) {
            settings = m.at("settings");
            firstManifest = m;
        } else if (m.at("settings") != settings) {
            throw InputError(sub, "shard " + name + " was built with another model or settings than the first (" +
                                      m.at("settings").value("fingerprint", "?") + " vs " + settings.value("fingerprint", "?") + ")");
        }
        result.rows += m.at("rows").get<int64_t>();
        result.skipped += m.value("skipped", int64_t{0});
        dirs.push_back(sub);
    }
    if (expectFrom != head.total) throw InputError(shardsDir(dir), "the shards do not cover the whole list");
    if (dirs.empty() || result.rows == 0) throw InputError(dir, "the shards hold no rows");

    if (fs::exists(dir + "/manifest.json")) {
        const json m = readJson(dir + "/manifest.json");
        if (m.value("complete", false) && m.value("merged_shards", 0) == count && m.value("rows", int64_t{0}) == result.rows) {
            result.alreadyMerged = true;
            return result;
        }
        throw InputError(dir, "already holds a cache that is not this merge; merge into a copy or delete its files");
    }
    // Everything is written beside, then moved in; the manifest last, so that an interrupted
    // merge never reads as a cache and a rerun starts over.
    const std::string tmp = dir + "/.merge";
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    std::vector<std::string> files;
    for (const char* name : kArrayFiles) {
        if (!fs::exists(dirs.front() + "/" + name)) continue;
        result.bytes += mergeArray(dirs, name, tmp + "/" + name, result.rows);
        files.push_back(name);
    }
    const std::string paths = concatenated(dirs, "paths.txt"), skipped = concatenated(dirs, "skipped.txt");
    std::string inputs;
    for (const ShardRecord& r : records)
        if (r.from < r.to) inputs += readFileText(shardsDir(dir) + "/" + shardName(r.index, r.count) + "/inputs.txt");
    writeFileAtomic(tmp + "/paths.txt", paths);
    writeFileAtomic(tmp + "/skipped.txt", skipped);
    writeFileAtomic(tmp + "/inputs.txt", inputs);
    for (const char* name : {"paths.txt", "skipped.txt", "inputs.txt"}) files.push_back(name);
    Progress p;
    p.nextInput = head.total;
    p.rows = result.rows;
    p.skipped = result.skipped;
    p.pathsBytes = static_cast<int64_t>(paths.size());
    p.skippedBytes = static_cast<int64_t>(skipped.size());
    writeProgress(tmp, p);
    files.push_back("progress.json");
    json manifest = firstManifest;
    manifest["rows"] = result.rows;
    manifest["skipped"] = result.skipped;
    manifest["inputs"] = head.total;
    manifest["complete"] = true;
    manifest["merged_shards"] = count;
    manifest["batch"] = head.batch;
    for (const std::string& f : files) fs::rename(tmp + "/" + f, dir + "/" + f);
    writeFileAtomic(dir + "/manifest.json", manifest.dump(1) + "\n");
    fs::remove_all(tmp);
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return result;
}

GatherResult gatherCacheShards(const Model& model, const std::vector<std::string>& images, const CacheBuildParams& params,
                               const JobContext& job) {
    GatherResult g;
    const std::string& dir = params.outDir;
    if (!fs::is_directory(shardsDir(dir)) || fs::exists(dir + "/manifest.json")) return g;  // no shards, or merged already
    const std::vector<ShardRecord> records = findRecords(dir);
    if (records.empty()) return g;
    const int count = records.front().count;
    if (std::any_of(records.begin(), records.end(), [&](const ShardRecord& r) { return r.count != count; }))
        throw InputError(shardsDir(dir), "holds shards of several counts; delete the ones of the count not wanted");
    g.gathered = true;
    g.shards = count;
    const std::vector<ShardState> states = cacheStatus(dir).shards;
    for (int i = 0; i < count; ++i) {
        const auto it = std::find_if(states.begin(), states.end(), [&](const ShardState& s) { return s.index == i; });
        if (it != states.end() && it->complete) continue;
        ShardSpec spec;
        spec.index = i, spec.count = count, spec.source = "gathering run (the shard was not finished)";
        if (buildCacheShard(model, images, params, spec, job).cancelled) {
            g.cancelled = true;
            return g;
        }
        ++g.built;
    }
    mergeCacheShards(dir, count);
    return g;
}

}  // namespace vitscope
