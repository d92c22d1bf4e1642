// SAE training (analysis/sae_train.h): deterministic for a seed, a cancelled run resumed equals
// an uninterrupted one, TopK keeps the k largest, the Matryoshka loss against sums written out
// here, planted dictionary directions recovered, purity against counts done by hand, and bad
// settings refused naming the field.
#include "analysis/sae.h"
#include "analysis/sae_train.h"
#include "analysis/sae_train_purity.h"
#include "analysis/sae_train_state.h"
#include "error.h"
#include "io/file_util.h"

#include <QtTest/QtTest>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <random>

using namespace vitscope;

namespace {

// Rows as sparse non-negative combinations of `atoms` unit directions (2 per row, coefficients
// in [0.5, 1.5]) plus Gaussian noise of `noise`; the directions [atoms, d] returned too.
at::Tensor plantedRows(int64_t n, int64_t d, int64_t atoms, double noise, uint64_t seed, at::Tensor* directions) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal;
    std::uniform_real_distribution<double> coef(0.5, 1.5);
    at::Tensor dirs = at::zeros({atoms, d}, at::kDouble);
    for (int64_t a = 0; a < atoms; ++a)
        for (int64_t j = 0; j < d; ++j) dirs[a][j] = normal(rng);
    dirs = dirs / dirs.norm(2, {1}, true);
    at::Tensor rows = at::zeros({n, d}, at::kDouble);
    for (int64_t i = 0; i < n; ++i) {
        const int64_t a = static_cast<int64_t>(rng() % atoms);
        const int64_t b = (a + 1 + static_cast<int64_t>(rng() % (atoms - 1))) % atoms;
        rows[i] = dirs[a] * coef(rng) + dirs[b] * coef(rng);
        for (int64_t j = 0; j < d; ++j) rows[i][j] += noise * normal(rng);
    }
    *directions = dirs.to(at::kFloat);
    return rows.to(at::kFloat);
}

// For every planted direction, its largest cosine with a decoder row.
at::Tensor bestCosines(const at::Tensor& directions, const at::Tensor& wDec) {
    const at::Tensor rows = wDec / wDec.norm(2, {1}, true);
    return std::get<0>(at::matmul(directions, rows.t()).max(1));
}

struct Cancelling {
    std::atomic<bool> flag{false};
    JobContext job(int64_t atStep) {
        JobContext j;
        j.cancel = &flag;
        j.progress = [this, atStep](const JobProgress& p) {
            if (p.done == atStep) flag = true;
        };
        return j;
    }
};

}  // namespace

class TestSaeTrain : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    std::string path(const std::string& name) const { return (m_dir.path() + "/").toStdString() + name; }

    SaeTrainParams small(SaeKind kind, const std::string& out) const {
        SaeTrainParams p;
        p.kind = kind;
        p.k = 3;
        p.width = 24;
        p.epochs = 4;
        p.batch = 32;
        p.lr = 1e-3;
        p.seed = 7;
        p.out = path(out);
        p.deadTokens = 320;  // dead after 10 idle steps, so AuxK takes part
        p.checkpointEvery = 5;
        return p;
    }

private slots:
    void deterministicForASeed() {
        at::Tensor dirs;
        const at::Tensor rows = plantedRows(300, 12, 5, 0.05, 3, &dirs);
        for (SaeKind kind : {SaeKind::TopK, SaeKind::Matryoshka}) {
            SaeTrainParams p = small(kind, "det-a.safetensors");
            trainSae(rows, p, {});
            p.out = path("det-b.safetensors");
            trainSae(rows, p, {});
            QVERIFY(readFileBytes(path("det-a.safetensors")) == readFileBytes(path("det-b.safetensors")));
            p.seed = 8;
            p.out = path("det-c.safetensors");
            trainSae(rows, p, {});
            QVERIFY(readFileBytes(path("det-a.safetensors")) != readFileBytes(path("det-c.safetensors")));
        }
    }

    void resumeEqualsUninterrupted() {
        at::Tensor dirs;
        const at::Tensor rows = plantedRows(300, 12, 5, 0.05, 4, &dirs);
        for (SaeKind kind : {SaeKind::TopK, SaeKind::Matryoshka}) {
            const std::string name = kind == SaeKind::TopK ? "topk" : "matryoshka";
            SaeTrainParams p = small(kind, name + "-whole.safetensors");
            const SaeTrainResult whole = trainSae(rows, p, {});
            QCOMPARE(whole.resumedAt, int64_t(0));
            p.out = path(name + "-parts.safetensors");
            Cancelling c;
            QVERIFY_THROWS_EXCEPTION(JobCancelled, trainSae(rows, p, c.job(17)));  // between checkpoints (every 5)
            QVERIFY(std::filesystem::exists(p.out + ".ckpt"));
            QVERIFY(!std::filesystem::exists(p.out));
            const SaeTrainResult parts = trainSae(rows, p, {});
            QCOMPARE(parts.resumedAt, int64_t(17));
            QCOMPARE(parts.steps, whole.steps);
            QVERIFY(!std::filesystem::exists(p.out + ".ckpt"));
            QVERIFY(readFileBytes(path(name + "-whole.safetensors")) == readFileBytes(p.out));
            // Another run's checkpoint is refused, not silently continued.
            Cancelling again;
            QVERIFY_THROWS_EXCEPTION(JobCancelled, trainSae(rows, p, again.job(3)));
            p.seed = 99;
            QVERIFY_THROWS_EXCEPTION(InputError, trainSae(rows, p, {}));
            p.resume = false;
            trainSae(rows, p, {});
        }
    }

    void topkKeepsTheKLargest() {
        const at::Tensor pre = at::rand({50, 40}, at::TensorOptions().dtype(at::kFloat)) + 0.01;
        const at::Tensor f = topkRelu(pre, 6);
        QVERIFY(((f != 0).sum(1) == 6).all().item<bool>());
        for (int64_t i = 0; i < 50; ++i) {
            std::vector<float> v(pre[i].data_ptr<float>(), pre[i].data_ptr<float>() + 40);
            std::sort(v.begin(), v.end());
            const float sixth = v[40 - 6];
            for (int64_t j = 0; j < 40; ++j)
                QCOMPARE(f[i][j].item<float>(), pre[i][j].item<float>() >= sixth ? pre[i][j].item<float>() : 0.f);
        }
        // Through a trained file: at most k active, and exactly k where the k largest are positive.
        at::Tensor dirs;
        const at::Tensor rows = plantedRows(300, 12, 5, 0.05, 5, &dirs);
        SaeTrainParams p = small(SaeKind::TopK, "topk.safetensors");
        trainSae(rows, p, {});
        const SparseAutoencoder sae = loadSae(p.out);
        QCOMPARE(sae.k, 3);
        QVERIFY(sae.activation == SaeActivation::TopKReLU);
        const at::Tensor latents = encodeSae(sae, rows).latents;
        const at::Tensor pre2 = at::matmul(rows - sae.b_dec, sae.W_enc) + sae.b_enc;
        const at::Tensor positiveInTop = (std::get<0>(pre2.topk(3, 1)) > 0).sum(1);
        QVERIFY(((latents > 0).sum(1) == positiveInTop).all().item<bool>());
        QVERIFY(((latents > 0).sum(1) <= 3).all().item<bool>());
    }

    void fileFollowsTheSpec() {
        at::Tensor dirs;
        const at::Tensor rows = plantedRows(200, 10, 4, 0.05, 6, &dirs);
        SaeTrainParams p = small(SaeKind::Matryoshka, "spec.safetensors");
        p.site = "layer:2";
        p.model = "some/model";
        const SaeTrainResult r = trainSae(rows, p, {});
        const SparseAutoencoder f = loadSae(p.out);
        QCOMPARE(f.layout, std::string("vitscope"));
        QCOMPARE(f.site(), std::string("layer:2"));
        QCOMPARE(f.objective, std::string("matryoshka"));
        QCOMPARE(f.W_enc.sizes(), (at::IntArrayRef{10, 24}));
        QCOMPARE(f.W_dec.sizes(), (at::IntArrayRef{24, 10}));
        QCOMPARE(f.metadata.at("format"), std::string("vitscope-sae"));
        QCOMPARE(f.metadata.at("version"), std::string("1"));
        QCOMPARE(f.metadata.at("site"), std::string("layer:2"));
        QCOMPARE(f.metadata.at("objective"), std::string("matryoshka"));
        QCOMPARE(f.metadata.at("activation"), std::string("topk"));
        QCOMPARE(f.metadata.at("nested_k"), std::string("3,6,12,24"));
        QCOMPARE(f.metadata.at("model"), std::string("some/model"));
        QCOMPARE(f.metadata.at("steps"), std::to_string(r.steps));
        QCOMPARE(r.steps, int64_t(4 * 7));  // ceil(200 / 32) per epoch: the last partial batch kept
        // The file's encoding reproduces the trainer's figure (standardisation folded in).
        const at::Tensor recon = decodeSae(f, encodeSae(f, rows).latents, rows);
        const double fvu =
            (rows - recon).pow(2).sum().item<double>() / (rows - rows.mean(0)).pow(2).sum().item<double>();
        QVERIFY(std::abs(fvu - r.fvu) < 1e-6);
        QVERIFY(fvu < 0.9);
    }

    void matryoshkaLossIsTheWeightedPrefixSum() {
        const at::Tensor x = at::tensor({1.0f, -2.0f, 0.5f, 0.0f, 1.0f, 3.0f}).reshape({2, 3});
        const at::Tensor pre = at::tensor({0.5f, -1.0f, 2.0f, 0.25f, 1.5f, 0.75f, -0.5f, 0.1f}).reshape({2, 4});
        const at::Tensor wDec =
            at::tensor({1.f, 0.f, 0.f, 0.f, 1.f, 0.f, 0.f, 0.f, 1.f, 1.f, 1.f, 1.f}).reshape({4, 3});
        const at::Tensor bPre = at::tensor({0.1f, 0.0f, -0.1f});
        // By hand, row by row: keep the entries listed, decode, NMSE = mean (r - x)^2 / mean x^2.
        auto nmse = [&](const std::vector<std::vector<int>>& keep) {
            double total = 0;
            for (int i = 0; i < 2; ++i) {
                double num = 0, den = 0;
                for (int j = 0; j < 3; ++j) {
                    double r = bPre[j].item<double>();
                    for (int l : keep[static_cast<std::size_t>(i)])
                        r += std::max(0.0, pre[i][l].item<double>()) * wDec[l][j].item<double>();
                    num += std::pow(r - x[i][j].item<double>(), 2) / 3;
                    den += std::pow(x[i][j].item<double>(), 2) / 3;
                }
                total += num / den / 2;
            }
            return total;
        };
        SaeTrainParams p;
        p.kind = SaeKind::Matryoshka, p.width = 4, p.k = 1, p.groups = {1, 2, 4}, p.out = "unused";
        // nested k: row 0 ranks latents 2, 0, 3, 1; row 1 ranks 0, 1, 3, 2.
        const double k1 = nmse({{2}, {0}}), k2 = nmse({{2, 0}, {0, 1}}), k4 = nmse({{2, 0, 3, 1}, {0, 1, 3, 2}});
        QVERIFY(std::abs(matryoshkaLoss(x, pre, wDec, bPre, p).item<double>() - (k1 + k2 + k4) / 3) < 1e-6);
        p.weighting = "RW";
        QVERIFY(std::abs(matryoshkaLoss(x, pre, wDec, bPre, p).item<double>() - (3 * k1 + 2 * k2 + k4) / 6) < 1e-6);
        // prefix: one TopK (k = 2: latents {2, 0} and {0, 1}), decoded through the first 1, 2, 4 latents.
        p.weighting = "UW", p.nesting = SaeNesting::Prefix, p.k = 2;
        const double g1 = nmse({{0}, {0}}), g2 = nmse({{0}, {0, 1}}), g4 = nmse({{2, 0}, {0, 1}});
        QVERIFY(std::abs(matryoshkaLoss(x, pre, wDec, bPre, p).item<double>() - (g1 + g2 + g4) / 3) < 1e-6);
    }

    void recoversPlantedDirections() {
        at::Tensor dirs;
        const at::Tensor rows = plantedRows(2000, 16, 6, 0.02, 11, &dirs);
        for (SaeKind kind : {SaeKind::TopK, SaeKind::Matryoshka}) {
            SaeTrainParams p = small(kind, "planted.safetensors");
            p.k = 2, p.width = 16, p.epochs = kind == SaeKind::TopK ? 30 : 60, p.batch = 64, p.lr = 3e-3;
            p.deadTokens = 6400;
            const SaeTrainResult r = trainSae(rows, p, {});
            const at::Tensor best = bestCosines(dirs, loadSae(p.out).W_dec);
            qInfo("%s: planted-direction cosines min %.4f mean %.4f, FVU %.4f, dead %lld",
                  kind == SaeKind::TopK ? "topk" : "matryoshka", best.min().item<double>(), best.mean().item<double>(),
                  r.fvu, static_cast<long long>(r.dead));
            QVERIFY2((best > 0.9).all().item<bool>(), "a planted direction has no decoder row within cosine 0.9");
        }
    }

    void purityCountsByHand() {
        // 6 rows, 3 latents: latent 0 fires on rows 0-2 (red, red, blue), latent 1 on rows 3-4
        // (green, green), latent 2 never.
        const at::Tensor latents =
            at::tensor({1.f, 0.f, 0.f, 2.f, 0.f, 0.f, 0.5f, 0.f, 0.f, 0.f, 1.f, 0.f, 0.f, 3.f, 0.f, 0.f, 0.f, 0.f})
                .reshape({6, 3});
        const std::map<std::string, std::vector<std::string>> labels = {
            {"color", {"red", "red", "blue", "green", "green", "red"}}, {"shape", {"a", "b", "c", "a", "b", "c"}}};
        const SaePurity r = saePurity(latents, labels, 0.6);
        QCOMPARE(r.dead, int64_t(1));
        QCOMPARE(r.alive, int64_t(2));
        QCOMPARE(r.attributes, (std::vector<std::string>{"color", "shape"}));
        QVERIFY(std::abs(r.precision[0][0].item<double>() - 2.0 / 3.0) < 1e-12);
        QCOMPARE(r.bestValue[0][0], std::string("red"));
        QVERIFY(std::abs(r.precision[1][0].item<double>() - 1.0) < 1e-12);
        QVERIFY(std::abs(r.precision[1][1].item<double>() - 0.5) < 1e-12);
        QCOMPARE(r.pure, (std::vector<int64_t>{2, 0}));
        QCOMPARE(r.values, (std::vector<int64_t>{3, 3}));
        QCOMPARE(r.covered, (std::vector<int64_t>{2, 0}));  // red (latent 0) and green (latent 1)
        QVERIFY(std::abs(r.majority[0] - 0.5) < 1e-12 && std::abs(r.majority[1] - 1.0 / 3.0) < 1e-12);
        QCOMPARE(saePurity(latents, labels, 0.6, 3).alive, int64_t(1));
    }

    void badSettingsNameTheField() {
        auto fieldOf = [](SaeTrainParams p) {
            try {
                p.validate();
            } catch (const InputError& e) {
                return e.where();
            }
            return std::string("accepted");
        };
        SaeTrainParams p;
        p.out = "x";
        QCOMPARE(fieldOf(p), std::string("accepted"));
        SaeTrainParams bad = p;
        bad.site = "layer:x";
        QCOMPARE(fieldOf(bad), std::string("site"));
        bad = p, bad.site = "residual";
        QCOMPARE(fieldOf(bad), std::string("site"));
        bad = p, bad.k = bad.width + 1;
        QCOMPARE(fieldOf(bad), std::string("k"));
        bad = p, bad.kind = SaeKind::Matryoshka, bad.groups = {32, 16};
        QCOMPARE(fieldOf(bad), std::string("groups"));
        bad = p, bad.normalize = "batch";
        QCOMPARE(fieldOf(bad), std::string("normalize"));
        at::Tensor dirs;
        SaeTrainParams big = small(SaeKind::TopK, "big.safetensors");
        big.batch = 400;
        QVERIFY_THROWS_EXCEPTION(InputError, trainSae(plantedRows(100, 8, 3, 0.1, 1, &dirs), big, {}));
    }
};

QTEST_GUILESS_MAIN(TestSaeTrain)
#include "test_sae_train.moc"
