#pragma once
// `neurons summarise` split over the tasks of a job array (Slurm, GNU parallel, ...):
//
//   NeuronShardPlan plan{&lens, pixels, images, topK, batch, 512, out + "/shards", key};
//   runNeuronShard(plan, I, N, job);          // each task, as often as needed
//   NeuronDirections d = mergeNeuronShards(plan, N, job);  // afterwards: one run's result, bit for bit
//
// Shard I of N summarises its part of the images (shardRange in chunks of
// NeuronSummaryBuilder::kChunk) in DIR/I-of-N/state.safetensors. The second pass needs the mean of
// every image, so a shard runs in two phases: pass 1 over its images (its sums), then, once every
// shard's pass 1 is finished (read from their states), the mean and pass 2 over its images (its
// top-k candidates). A task does what it can: the last to finish pass 1 goes on with pass 2, the
// others stop and name the shards they wait on; the array run again (a second array chained with
// afterok) does the rest. mergeNeuronShards finishes whatever the tasks left (pass 1 of shards
// never run, then every pass 2) and joins the candidates in image order. Every state records the
// summary's key and its shard: a state of another summary or shard count is refused (FormatError
// naming the file).
#include "analysis/neurons.h"

#include <string>
#include <vector>

namespace vitscope {

struct NeuronShardPlan {
    const SecondOrderLens* lens = nullptr;
    NeuronPixelBatches pixels;  // pixels(start, n) of all images
    int64_t images = 0;
    int topK = 100, batch = 16;
    int64_t saveEvery = 512;
    std::string dir;  // the shards' folder (OUT/shards)
    std::string key;  // the summary's; shard I-of-N's states record it with the shard's name
};

struct NeuronShardOutcome {
    bool finished = false;               // both passes of the shard are done
    std::vector<std::string> waitingOn;  // "I-of-N" of the shards whose pass 1 is not finished yet
    int resumedPass = 0;                 // the pass a saved state was resumed in (0: started afresh)
    int64_t resumedDone = 0;             // and the images of it done then
    int64_t from = 0, to = 0;            // the shard's images
};

std::string neuronShardState(const std::string& dir, int index, int count);  // DIR/I-of-N/state.safetensors

// Shard `index` of `count` as far as it goes (see above). JobCancelled after saving its state.
NeuronShardOutcome runNeuronShard(const NeuronShardPlan& plan, int index, int count, const JobContext& job);

// Every shard finished and joined. Holds two shards' candidates at a time.
NeuronDirections mergeNeuronShards(const NeuronShardPlan& plan, int count, const JobContext& job);

}  // namespace vitscope
