#include "benchmark_progress.h"

#include "error.h"
#include "io/file_util.h"

#include <filesystem>

namespace fs = std::filesystem;

namespace vitscope::cli {

ImageProgress::ImageProgress(const std::string& out, const nlohmann::ordered_json& key, const std::string& shard) {
    m_file = (fs::path(out) / (shard.empty() ? "progress.jsonl" : "progress-" + shard + ".jsonl")).string();
    const nlohmann::json want = nlohmann::json::parse(key.dump());
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(out, ec)) {
        const std::string name = e.path().filename().string();
        if (name.rfind("progress", 0) != 0 || e.path().extension() != ".jsonl") continue;
        std::ifstream in(e.path());
        std::string line;
        if (!std::getline(in, line)) continue;
        const nlohmann::json first = nlohmann::json::parse(line, nullptr, false);
        if (first.is_discarded() || !first.contains("key") || first["key"] != want)
            throw InputError(e.path().string(), "belongs to a run with other settings (model, data, protocol or its options): use another --out");
        while (std::getline(in, line)) {  // a torn last line (a killed run) ends the file's share
            const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
            if (j.is_discarded() || !j.contains("index") || !j.contains("result")) break;
            m_done[j["index"].get<int64_t>()] = j["result"];
        }
    }
    const bool fresh = !fs::exists(m_file, ec);
    if (fresh) writeFileAtomic(m_file, nlohmann::json{{"key", key}}.dump() + "\n");
    m_log.open(m_file, std::ios::app);
    if (!m_log) throw IoError(m_file, "cannot be written");
}

void ImageProgress::record(int64_t index, const nlohmann::json& result) {
    m_log << nlohmann::json{{"index", index}, {"result", result}}.dump() << "\n" << std::flush;
    if (!m_log) throw IoError(m_file, "cannot be written");
    m_done[index] = result;
}

}  // namespace vitscope::cli
