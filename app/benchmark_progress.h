#pragma once
// The finished images of a per-image benchmark run (evaluate imagenet-seg, ovseg), kept so that a
// run resumes and shards: OUT/progress.jsonl (or OUT/progress-I-of-N.jsonl for shard I of N)
// holds the run's key on its first line, then one line per finished image (evaluate waterbirds
// keeps its images in shard caches and uses the key only). Every file of OUT
// with the same key counts, so a run without --shard after the shards (of a Slurm job array)
// only adds what they left; a file of another key is refused.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <fstream>
#include <map>
#include <string>

namespace vitscope::cli {

class ImageProgress {
public:
    // `shard`: "" or "I-of-N". Throws InputError naming the file of another run's key.
    ImageProgress(const std::string& out, const nlohmann::ordered_json& key, const std::string& shard);
    const std::map<int64_t, nlohmann::json>& done() const { return m_done; }
    void record(int64_t index, const nlohmann::json& payload);  // flushed at once
    const std::string& file() const { return m_file; }

private:
    std::map<int64_t, nlohmann::json> m_done;
    std::string m_file;
    std::ofstream m_log;
};

}  // namespace vitscope::cli
