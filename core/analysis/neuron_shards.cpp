#include "analysis/neuron_shards.h"

#include "analysis/cache_shards.h"
#include "error.h"

#include <filesystem>
#include <memory>

namespace fs = std::filesystem;

namespace vitscope {

namespace {

NeuronSummaryBuilder partBuilder(const NeuronShardPlan& p, int index, int count) {
    const auto [from, to] = shardRange(p.images, static_cast<int>(NeuronSummaryBuilder::kChunk), index, count);
    return NeuronSummaryBuilder(p.images, p.lens->neurons(), p.lens->embedDim(), p.topK, from, to);
}

std::string shardKey(const NeuronShardPlan& p, int index, int count) { return p.key + " shard " + shardName(index, count); }

// Shard `index` resumed from its state (or afresh) and fed as far as it goes without the mean.
// `info` (when given) gets the pass and images a saved state was resumed at.
NeuronSummaryBuilder resumed(const NeuronShardPlan& p, int index, int count, const JobContext& job, NeuronShardOutcome* info = nullptr) {
    NeuronSummaryBuilder b = partBuilder(p, index, count);
    const std::string state = neuronShardState(p.dir, index, count), key = shardKey(p, index, count);
    std::error_code ec;
    fs::create_directories(fs::path(state).parent_path(), ec);
    if (b.restore(state, key)) {
        if (info) *info = {false, {}, b.pass(), b.done(), b.from(), b.to()};
    } else {
        if (info) *info = {false, {}, 0, 0, b.from(), b.to()};
        if (b.waitingForMean()) b.save(state, key);  // (an empty part: its pass 1 is finished as it starts)
    }
    feedNeuronSummary(b, *p.lens, p.pixels, p.batch, job, state, key, p.saveEvery);
    return b;
}

// Starts pass 2 of a waiting shard with `mean` and finishes it.
void finishWith(NeuronSummaryBuilder& b, const at::Tensor& mean, const NeuronShardPlan& p, int index, int count, const JobContext& job) {
    const std::string state = neuronShardState(p.dir, index, count), key = shardKey(p, index, count);
    if (b.waitingForMean()) {
        b.setMean(mean);
        if (b.pass() == 3) b.save(state, key);  // (an empty part)
    }
    feedNeuronSummary(b, *p.lens, p.pixels, p.batch, job, state, key, p.saveEvery);
}

}  // namespace

std::string neuronShardState(const std::string& dir, int index, int count) {
    return (fs::path(dir) / shardName(index, count) / "state.safetensors").string();
}

NeuronShardOutcome runNeuronShard(const NeuronShardPlan& p, int index, int count, const JobContext& job) {
    if (!p.lens || count < 1 || index < 0 || index >= count) throw InputError("--shard", "needs 0 <= I < N");
    NeuronShardOutcome out;
    NeuronSummaryBuilder b = resumed(p, index, count, job, &out);
    if (b.waitingForMean()) {
        std::vector<OrderedSum> sums;
        for (int i = 0; i < count; ++i) {
            OrderedSum s;
            if (i == index)
                s = b.sums();
            else if (!partBuilder(p, i, count).finishedSums(neuronShardState(p.dir, i, count), shardKey(p, i, count), s))
                out.waitingOn.push_back(shardName(i, count));
            sums.push_back(std::move(s));
        }
        if (!out.waitingOn.empty()) return out;
        finishWith(b, NeuronSummaryBuilder::meanOf(sums, p.images), p, index, count, job);
    }
    out.finished = b.pass() == 3;
    return out;
}

NeuronDirections mergeNeuronShards(const NeuronShardPlan& p, int count, const JobContext& job) {
    if (!p.lens || count < 1) throw InputError("neuron summary", "no shards to merge");
    std::vector<OrderedSum> sums;  // pass 1 of every shard (finished here where a task did not)
    for (int i = 0; i < count; ++i) sums.push_back(resumed(p, i, count, job).sums());
    const at::Tensor mean = NeuronSummaryBuilder::meanOf(sums, p.images);
    std::unique_ptr<NeuronSummaryBuilder> joined;
    for (int i = 0; i < count; ++i) {
        NeuronSummaryBuilder b = resumed(p, i, count, job);
        finishWith(b, mean, p, i, count, job);
        if (!joined)
            joined = std::make_unique<NeuronSummaryBuilder>(std::move(b));
        else
            joined->absorb(b);
    }
    return joined->finish();
}

}  // namespace vitscope
