// Sharded cache builds: the shard a flag or a launcher's variables select, chunk-aligned ranges,
// kill-and-resume of one shard, and a merge whose files equal a single build's byte for byte;
// every mismatch refused with a message naming it. (The same through GNU parallel and a real Slurm:
// tests/slurm/test_sharded_cache.sh.)
#include "analysis/cache.h"
#include "analysis/cache_shards.h"
#include "error.h"
#include "io/file_util.h"
#include "model/loader.h"
#include "shapes/dataset.h"
#include "test_util.h"

#include <QtTest/QtTest>

#include <atomic>
#include <filesystem>
#include <map>

using namespace vitscope;
namespace fs = std::filesystem;

namespace {

EnvironmentLookup fakeEnvironment(const std::map<std::string, std::string>& vars) {
    return [vars](const char* name) -> const char* {
        const auto it = vars.find(name);
        return it == vars.end() ? nullptr : it->second.c_str();
    };
}

template <typename Fn>
std::string errorOf(Fn fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.what();
    }
    return "no error";
}

// `count` shapes-world scenes written under `dir`, as listImages lists them.
std::vector<std::string> sceneFiles(const std::string& dir, int64_t count, uint64_t seed) {
    shapes::GenerateParams g;
    g.outDir = dir;
    g.count = count;
    g.seed = seed;
    shapes::generateDataset(g, {});
    return listImages(dir + "/images");
}

const char* const kCacheFiles[] = {"heads.npy", "mlps.npy", "other.npy", "output.npy", "paths.txt", "skipped.txt", "inputs.txt"};

}  // namespace

class TestShards : public QObject {
    Q_OBJECT

private slots:
    void shardFromFlagOrLauncher() {
        const EnvironmentLookup none = fakeEnvironment({});
        ShardSpec s = resolveShard("2/5", 0, none);
        QCOMPARE(s.index, 2);
        QCOMPARE(s.count, 5);
        QVERIFY(!resolveShard("", 0, none).defined());
        // A Slurm array 3-6: task 5 is shard 2 of 4.
        s = resolveShard("", 0, fakeEnvironment({{"SLURM_ARRAY_TASK_ID", "5"}, {"SLURM_ARRAY_TASK_MIN", "3"}, {"SLURM_ARRAY_TASK_COUNT", "4"}}));
        QCOMPARE(s.index, 2);
        QCOMPARE(s.count, 4);
        QVERIFY(s.source.find("SLURM_ARRAY_TASK_ID=5") != std::string::npos);
        // The flag wins over the environment.
        QCOMPARE(resolveShard("0/2", 0, fakeEnvironment({{"SLURM_ARRAY_TASK_ID", "1"}, {"SLURM_ARRAY_TASK_COUNT", "2"}})).index, 0);
        s = resolveShard("", 3, fakeEnvironment({{"JOB_COMPLETION_INDEX", "1"}}));
        QCOMPARE(s.index, 1);
        QCOMPARE(s.count, 3);
        s = resolveShard("", 0, fakeEnvironment({{"RANK", "3"}, {"WORLD_SIZE", "8"}}));
        QCOMPARE(s.index, 3);
        QCOMPARE(s.count, 8);
        // Refusals name the flag or variable.
        QVERIFY(errorOf([&] { resolveShard("3/2", 0, none); }).rfind("--shard:", 0) == 0);
        QVERIFY(errorOf([&] { resolveShard("a/b", 0, none); }).rfind("--shard:", 0) == 0);
        QVERIFY(errorOf([&] { resolveShard("", 0, fakeEnvironment({{"SLURM_ARRAY_TASK_ID", "1"}})); }).rfind("SLURM_ARRAY_TASK_COUNT:", 0) == 0);
        QVERIFY(errorOf([&] { resolveShard("", 0, fakeEnvironment({{"JOB_COMPLETION_INDEX", "0"}})); }).find("--num-shards") != std::string::npos);
        QVERIFY(errorOf([&] { resolveShard("", 0, fakeEnvironment({{"RANK", "x"}, {"WORLD_SIZE", "2"}})); }).rfind("RANK:", 0) == 0);
        QVERIFY(errorOf([&] { resolveShard("", 0, fakeEnvironment({{"RANK", "2"}, {"WORLD_SIZE", "2"}})); }).rfind("RANK:", 0) == 0);
        QVERIFY(errorOf([&] { resolveShard("", 4, none); }).rfind("--num-shards:", 0) == 0);
    }

    void shardRangesAreChunkAligned() {
        int cases = 0;
        for (int64_t n : {1, 7, 8, 100, 1001})
            for (int batch : {1, 8, 32})
                for (int count : {1, 2, 3, 7, 200}) {
                    int64_t expect = 0, smallest = n, largest = 0;
                    for (int i = 0; i < count; ++i) {
                        const auto [from, to] = shardRange(n, batch, i, count);
                        QCOMPARE(from, expect);  // contiguous, in order
                        QVERIFY(from % batch == 0 || from == n);
                        QVERIFY(to >= from);
                        smallest = std::min(smallest, to - from);
                        largest = std::max(largest, to - from);
                        expect = to;
                    }
                    QCOMPARE(expect, n);  // the whole list
                    // Balanced to one chunk (the last chunk may be short).
                    QVERIFY(largest - smallest <= 2 * batch);
                    ++cases;
                }
        QCOMPARE(cases, 75);
    }

    void mergeEqualsOneBuild() {
        QTemporaryDir tmp;
        const std::string root = tmp.path().toStdString();
        std::vector<std::string> images = sceneFiles(root + "/world", 44, 77);
        writeFileAtomic(root + "/world/images/000020b.png", std::string("not an image"));  // skipped, inside shard 1
        images.insert(images.begin() + 21, root + "/world/images/000020b.png");
        const Model model = loadModel(test::source("models/shapes-clip"));
        CacheBuildParams p;
        p.batch = 6;
        p.outDir = root + "/single";
        buildCache(model, images, p, {});

        p.outDir = root + "/sharded";
        buildCacheShard(model, images, p, {0, 3, "test"}, {});
        // Shard 1 is interrupted after its first chunk, then resumed.
        std::atomic<bool> cancel{false};
        JobContext job;
        job.cancel = &cancel;
        job.progress = [&](const JobProgress&) { cancel.store(true); };
        QVERIFY(buildCacheShard(model, images, p, {1, 3, "test"}, job).cancelled);
        CacheStatus st = cacheStatus(p.outDir);
        QCOMPARE(st.shards.size(), std::size_t(2));
        QVERIFY(st.shards[0].complete && !st.shards[1].complete && st.shards[1].started);
        QCOMPARE(st.shards[1].done, int64_t(6));
        QCOMPARE(st.missing, std::vector<std::string>{"2-of-3"});
        QVERIFY(errorOf([&] { mergeCacheShards(p.outDir); }).find("shard(s) 2 of 3 are missing") != std::string::npos);
        buildCacheShard(model, images, p, {2, 3, "test"}, {});
        QVERIFY(errorOf([&] { mergeCacheShards(p.outDir); }).find("shard 1-of-3 is incomplete") != std::string::npos);
        const CacheBuildResult resumed = buildCacheShard(model, images, p, {1, 3, "test"}, {});
        QVERIFY(resumed.resumed);
        QCOMPARE(resumed.skipped, int64_t(1));

        const MergeResult m = mergeCacheShards(p.outDir);
        QCOMPARE(m.shards, 3);
        QCOMPARE(m.rows, int64_t(44));
        QCOMPARE(m.skipped, int64_t(1));
        for (const char* f : kCacheFiles)
            QVERIFY2(readFileBytes(root + "/single/" + f) == readFileBytes(p.outDir + "/" + f), f);
        const DatasetCache merged(p.outDir), single(root + "/single");
        QCOMPARE(merged.paths(), single.paths());
        QVERIFY(at::equal(merged.heads(), single.heads()));
        QVERIFY(cacheStatus(p.outDir).complete);
        QVERIFY(mergeCacheShards(p.outDir).alreadyMerged);
        // A complete merged cache is complete for cache build too: nothing is redone.
        CacheBuildParams again = p;
        const CacheBuildResult r = buildCache(model, images, again, {});
        QVERIFY(r.resumed);
        QCOMPARE(r.rows, int64_t(44));
    }

    void mergeRefusesMismatches() {
        QTemporaryDir tmp;
        const std::string root = tmp.path().toStdString();
        const std::vector<std::string> images = sceneFiles(root + "/world", 20, 78);
        const Model model = loadModel(test::source("models/shapes-clip"));
        CacheBuildParams p;
        p.batch = 4;
        p.outDir = root + "/mixed";
        buildCacheShard(model, images, p, {0, 2, "test"}, {});
        // Another convention: the same model, other settings.
        CacheBuildParams other = p;
        other.convention = Convention::TextSpan;
        buildCacheShard(model, images, other, {1, 2, "test"}, {});
        const std::string err = errorOf([&] { mergeCacheShards(p.outDir); });
        QVERIFY2(err.find("shard 1-of-2 was built with another model or settings") != std::string::npos, err.c_str());
        QVERIFY(!fs::exists(p.outDir + "/manifest.json"));
        // Another batch (the partition would differ) is refused at build time.
        CacheBuildParams batch = p;
        batch.batch = 5;
        QVERIFY(errorOf([&] { buildCacheShard(model, images, batch, {0, 2, "test"}, {}); }).find("another image list or batch") != std::string::npos);
        // Shards into a whole cache, and a merge with nothing to merge.
        p.outDir = root + "/whole";
        buildCache(model, images, p, {});
        QVERIFY(errorOf([&] { buildCacheShard(model, images, p, {0, 2, "test"}, {}); }).find("is a whole cache already") != std::string::npos);
        QVERIFY(errorOf([&] { mergeCacheShards(p.outDir); }).find("holds no shards") != std::string::npos);
    }
};

QTEST_GUILESS_MAIN(TestShards)
#include "test_shards.moc"
