#pragma once
// Dataset caches built in shards (one per machine, job-array task or process) and merged into one
// cache whose arrays equal a single build's byte for byte.
//
// CACHE/shards/I-of-N/      an ordinary cache of shard I's inputs: its own progress record, so a
//                           killed or preempted shard resumes on its own
// CACHE/shards/I-of-N.json  what the shard is: index, count, its range [from, to) of the whole
//                           list, the list's size and hash, the batch, the launcher that chose it
// The partition: the input list (as listImages sorts it) cut into chunks of `batch` inputs, C of
// them; shard I gets the contiguous chunks [I C / N, (I + 1) C / N). Cutting at chunk boundaries
// gives every image the same batch neighbours as a single build with that batch, which is what
// makes the merge byte-identical (a batched matmul's rows may differ in the last bit with its
// neighbours). The identity also needs the same device, CPU kernels and BLAS threads (OpenBLAS's
// sums differ in the last bit with its thread count; packaging/slurm sets them from the task's
// CPUs). Two shards never write the same file.
#include "analysis/cache.h"

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace vitscope {

struct ShardSpec {
    int index = -1, count = 0;
    std::string source;  // "--shard", or the launcher's variables as read, e.g. "SLURM_ARRAY_TASK_ID=2 ..."
    bool defined() const { return count > 0; }
};

using EnvironmentLookup = std::function<const char*(const char*)>;

// `flag` "I/N" (0-based) when not empty; else the launcher's environment: a Slurm job array
// (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT), a Kubernetes indexed job
// (JOB_COMPLETION_INDEX of `numShards`, which it needs), torchrun-style RANK of WORLD_SIZE; else
// undefined (one build). Throws InputError naming the flag or variable that is wrong.
ShardSpec resolveShard(const std::string& flag, int numShards, const EnvironmentLookup& env);
ShardSpec resolveShard(const std::string& flag, int numShards);  // the process environment

// Shard `index` of `count`'s inputs [from, to) of `inputs`, cut at multiples of `batch`.
std::pair<int64_t, int64_t> shardRange(int64_t inputs, int batch, int index, int count);
// "I-of-N"
std::string shardName(int index, int count);
// FNV-1a over the list's lines: shards of one build must agree on it.
std::string imageListHash(const std::vector<std::string>& images);

// The shards' array `name` (each written with the fixed 128-byte header, as the cache and
// second-order write them) concatenated into `outPath` with a header for `rows` rows; FormatError
// when the shards disagree in row shape or hold other than `rows` rows. Returns the data bytes.
uint64_t mergeArray(const std::vector<std::string>& shardDirs, const std::string& name, const std::string& outPath, int64_t rows);
// The shards' text files `name` one after another (the missing ones skipped).
std::string concatenated(const std::vector<std::string>& shardDirs, const std::string& name);

// Builds (or resumes) shard `shard` of the cache params.outDir over the whole list `images`.
CacheBuildResult buildCacheShard(const Model& model, const std::vector<std::string>& images, const CacheBuildParams& params,
                                 const ShardSpec& shard, const JobContext& job);

struct ShardState {
    int index = 0, count = 0;
    int64_t from = 0, to = 0;    // inputs of the whole list
    int64_t done = 0, rows = 0;  // inputs processed and rows written so far
    bool complete = false, started = false;
    std::string launcher;
};
struct CacheStatus {
    bool complete = false;  // CACHE itself is a complete cache (built whole or merged)
    int64_t rows = 0;
    std::vector<ShardState> shards;  // every shard record found, by count then index
    std::vector<std::string> missing;  // "I-of-N" of shard counts seen but not started
};
CacheStatus cacheStatus(const std::string& dir);

struct MergeResult {
    int shards = 0;
    int64_t rows = 0, skipped = 0;
    uint64_t bytes = 0;  // array bytes written
    double seconds = 0;
    bool alreadyMerged = false;
};
// Checks that every shard of N (`count`; 0: the only N present) is there, complete, built from
// the same list, model and settings, then writes the single-cache layout into CACHE (arrays,
// paths.txt, skipped.txt, inputs.txt, progress.json, then the manifest last). An interrupted
// merge leaves the shards intact and can be run again. Throws InputError naming what is missing
// or mismatched.
MergeResult mergeCacheShards(const std::string& dir, int count = 0);

// What a run without --shard does with the shards a job array left in params.outDir: builds the
// shards that are unfinished or were never started (each resumes where it stopped), then merges
// them into params.outDir (mergeCacheShards). Nothing when params.outDir holds no shards or is a
// cache already. Throws InputError as buildCacheShard and mergeCacheShards do (another list,
// batch or model, shards of several counts).
struct GatherResult {
    bool gathered = false, cancelled = false;
    int shards = 0, built = 0;  // the shard count, and the shards this run built (or finished)
};
GatherResult gatherCacheShards(const Model& model, const std::vector<std::string>& images, const CacheBuildParams& params,
                               const JobContext& job);

}  // namespace vitscope
