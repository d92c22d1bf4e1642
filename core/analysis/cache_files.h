#pragma once
// The files of a dataset cache as cache.cpp writes them, shared with the shard merge
// (cache_shards.cpp): the progress record, JSON and line files, the arrays' fixed npy header.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace vitscope::cache_files {

constexpr std::size_t kNpyHeaderBytes = 128;  // fixed, so that the final header is written in place
// Every array a cache may hold, in the order they are written (pool / convs only for some models).
inline const char* const kArrayFiles[] = {"heads.npy", "mlps.npy", "other.npy", "output.npy", "pool.npy", "convs.npy"};

// progress.json: rows written so far and where the build resumes.
struct Progress {
    int64_t nextInput = 0, rows = 0, pathsBytes = 0, skippedBytes = 0, skipped = 0;
};
void writeProgress(const std::string& dir, const Progress& p);
Progress readProgress(const std::string& dir);  // throws FormatError / IoError naming the file

nlohmann::json readJson(const std::string& path);  // throws FormatError naming the file
std::vector<std::string> readLines(const std::string& path);

}  // namespace vitscope::cache_files
