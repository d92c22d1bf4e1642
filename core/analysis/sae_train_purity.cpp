#include "analysis/sae_train_purity.h"

#include "analysis/labels.h"
#include "error.h"

#include <algorithm>
#include <filesystem>

namespace fs = std::filesystem;

namespace vitscope {

namespace {

std::string canonicalText(const fs::path& p) {
    std::error_code ec;
    const fs::path c = fs::weakly_canonical(fs::absolute(p), ec);
    return (ec ? p : c).lexically_normal().string();
}

// One attribute's best value per latent: counts [W, V] of active rows per value.
void bestValues(const at::Tensor& active, const std::vector<std::string>& values, std::size_t a, SaePurity* r) {
    std::vector<std::string> names;
    std::map<std::string, int64_t> index;
    std::vector<int64_t> code;
    for (const std::string& v : values) {
        const auto [it, added] = index.emplace(v, static_cast<int64_t>(names.size()));
        if (added) names.push_back(v);
        code.push_back(it->second);
    }
    const at::Tensor onehot =
        at::one_hot(at::tensor(code, at::kLong), static_cast<int64_t>(names.size())).to(at::kDouble);
    const at::Tensor counts = at::matmul(active.t(), onehot);  // [W, V]
    const auto best = counts.max(1);
    const at::Tensor share = std::get<0>(best) / r->activeCount.to(at::kDouble).clamp_min(1);
    const at::Tensor alive = r->activeCount >= r->minActive;
    r->precision.select(1, static_cast<int64_t>(a)).copy_(share * alive.to(at::kDouble));
    r->pure[a] = ((share >= r->threshold) & alive).sum().item<int64_t>();
    const at::Tensor arg = std::get<1>(best);
    std::vector<bool> hit(names.size(), false);
    for (int64_t w = 0; w < r->latents; ++w) {
        const auto v = static_cast<std::size_t>(arg[w].item<int64_t>());
        r->bestValue[static_cast<std::size_t>(w)][a] = names[v];
        if (alive[w].item<bool>() && share[w].item<double>() >= r->threshold) hit[v] = true;
    }
    r->values.push_back(static_cast<int64_t>(names.size()));
    r->covered.push_back(static_cast<int64_t>(std::count(hit.begin(), hit.end(), true)));
    r->majority.push_back(onehot.sum(0).max().item<double>() / static_cast<double>(values.size()));
}

}  // namespace

SaePurity saePurity(const at::Tensor& latents, const std::map<std::string, std::vector<std::string>>& labels,
                    double threshold, int64_t minActive) {
    if (latents.dim() != 2) throw InputError("latents", "need [N, W]");
    SaePurity r;
    r.threshold = threshold;
    r.minActive = std::max<int64_t>(1, minActive);
    r.latents = latents.size(1);
    const at::Tensor active = (latents > 0).to(at::kDouble);
    r.activeCount = active.sum(0).to(at::kLong);
    r.dead = (r.activeCount == 0).sum().item<int64_t>();
    r.alive = (r.activeCount >= r.minActive).sum().item<int64_t>();
    r.precision = at::zeros({r.latents, static_cast<int64_t>(labels.size())}, at::kDouble);
    r.bestValue.assign(static_cast<std::size_t>(r.latents), std::vector<std::string>(labels.size()));
    r.pure.assign(labels.size(), 0);
    std::size_t a = 0;
    for (const auto& [name, values] : labels) {
        if (static_cast<int64_t>(values.size()) != latents.size(0))
            throw InputError(
                name, std::to_string(values.size()) + " labels for " + std::to_string(latents.size(0)) + " rows");
        r.attributes.push_back(name);
        bestValues(active, values, a++, &r);
    }
    return r;
}

std::map<std::string, std::vector<std::string>> rowAttributes(const std::string& labelsCsv,
                                                              const std::vector<std::string>& paths,
                                                              const std::vector<std::string>& columns) {
    const auto table = readCsvTable(labelsCsv);
    const fs::path folder = fs::path(labelsCsv).parent_path();
    std::map<std::string, std::size_t> byPath;
    for (std::size_t i = 0; i < table.size(); ++i) {
        const auto it = table[i].find("file");
        if (it == table[i].end()) throw InputError(labelsCsv, "has no file column");
        byPath[canonicalText(folder / it->second)] = i;
    }
    std::map<std::string, std::vector<std::string>> out;
    for (const std::string& path : paths) {
        const auto row = byPath.find(canonicalText(path));
        if (row == byPath.end()) throw InputError(labelsCsv, "lists no row for " + path);
        for (const std::string& c : columns) {
            const auto cell = table[row->second].find(c);
            if (cell == table[row->second].end()) throw InputError(labelsCsv, "has no column " + c);
            out[c].push_back(cell->second);
        }
    }
    return out;
}

}  // namespace vitscope
