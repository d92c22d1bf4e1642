// Bad input never crashes: each case raises a vitscope::Error whose one-line message names the
// file and the problem.
#include "analysis/cache.h"
#include "error.h"
#include "image/codec.h"
#include "image/preprocess.h"
#include "io/file_util.h"
#include "io/tensor_io.h"
#include "model/forward.h"
#include "model/loader.h"
#include "test_util.h"

#if VITSCOPE_HAVE_OPENCV_IMGCODECS
#include <opencv2/imgcodecs.hpp>
#endif

#include <QtTest/QtTest>

#include <filesystem>

using namespace vitscope;
using vitscope::test::oracle;

namespace {

void writeBytes(const std::string& path, const std::vector<uint8_t>& bytes) { writeFileAtomic(path, bytes); }

std::vector<uint8_t> head(const std::vector<uint8_t>& b, std::size_t n) { return {b.begin(), b.begin() + long(std::min(n, b.size()))}; }

}  // namespace

class TestBadInput : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    std::string path(const std::string& name) { return (m_dir.path() + "/").toStdString() + name; }

    // Runs fn, expects a vitscope::Error whose message is one line, names `file` and contains `problem`.
    template <typename Fn>
    void expectError(Fn fn, const std::string& file, const QString& problem) {
        try {
            fn();
        } catch (const Error& e) {
            const QString msg = QString::fromStdString(e.what());
            QVERIFY2(!msg.contains('\n'), qPrintable(msg));
            QVERIFY2(msg.contains(QString::fromStdString(file)), qPrintable(msg));
            QVERIFY2(msg.contains(problem, Qt::CaseInsensitive), qPrintable(msg));
            return;
        } catch (const std::exception& e) {
            QFAIL(qPrintable(QString("not a vitscope::Error: ") + e.what()));
        }
        QFAIL("no error raised");
    }

private slots:
    void truncatedSafetensorsCheckpoint() {
        const auto bytes = readFileBytes(oracle("vit-tiny/timm_vit.safetensors"));
        writeBytes(path("trunc.safetensors"), head(bytes, bytes.size() / 2));
        expectError([&] { loadModel(path("trunc.safetensors")); }, path("trunc.safetensors"), "outside");
        writeBytes(path("tiny.safetensors"), head(bytes, 5));
        expectError([&] { loadModel(path("tiny.safetensors")); }, path("tiny.safetensors"), "too short");
    }

    void corruptSafetensorsHeader() {
        auto bytes = readFileBytes(oracle("vit-tiny/timm_vit.safetensors"));
        bytes[8] = '!';
        writeBytes(path("corrupt.safetensors"), bytes);
        expectError([&] { loadModel(path("corrupt.safetensors")); }, path("corrupt.safetensors"), "JSON");
    }

    void truncatedAndCorruptPickles() {
        const auto bytes = readFileBytes(oracle("vit-tiny/torchvision_vit.pth"));
        writeBytes(path("trunc.pth"), head(bytes, bytes.size() / 3));
        expectError([&] { loadModel(path("trunc.pth")); }, path("trunc.pth"), "truncated");
        auto corrupt = bytes;
        for (std::size_t i = 200; i < 400; ++i) corrupt[i] ^= 0x5a;
        writeBytes(path("corrupt.pth"), corrupt);
        expectError([&] { loadModel(path("corrupt.pth")); }, path("corrupt.pth"), "pickle");
        const auto ts = readFileBytes(oracle("clip-tiny/openai/ViT-tiny.pt"));
        writeBytes(path("trunc.pt"), head(ts, ts.size() / 2));
        expectError([&] { loadModel(path("trunc.pt")); }, path("trunc.pt"), "truncated");
        writeBytes(path("legacy.pth"), {0x80, 0x02, 0x8a, 0x0a});
        expectError([&] { loadModel(path("legacy.pth")); }, path("legacy.pth"), "truncated");
        writeBytes(path("empty.bin"), {});
        expectError([&] { loadModel(path("empty.bin")); }, path("empty.bin"), "empty");
    }

    void wrongShapeAndMissingTensors() {
        StateDict sd = readSafetensorsFloat(oracle("vit-tiny/timm_vit.safetensors"));
        StateDict wrong = sd;
        wrong["blocks.1.attn.proj.weight"] = at::zeros({128, 64});
        writeSafetensorsTensors(path("wrong.safetensors"), wrong);
        expectError([&] { loadModel(path("wrong.safetensors")); }, path("wrong.safetensors"),
                    "'blocks.1.attn.proj.weight' has shape [128, 64], expected [128, 128]");
        StateDict missing = sd;
        missing.erase("norm.weight");
        writeSafetensorsTensors(path("missing.safetensors"), missing);
        expectError([&] { loadModel(path("missing.safetensors")); }, path("missing.safetensors"), "missing tensor 'norm.weight'");
        StateDict badPos = sd;
        badPos["pos_embed"] = at::zeros({1, 20, 128});
        writeSafetensorsTensors(path("badpos.safetensors"), badPos);
        expectError([&] { loadModel(path("badpos.safetensors")); }, path("badpos.safetensors"), "square patch grid");
    }

    // SigLIP files that are not what they claim: one-line errors naming the file and the tensor.
    void brokenSiglipFiles() {
        const StateDict hf = readSafetensorsFloat(oracle("siglip-tiny/hf/model.safetensors"));
        const StateDict timm = readSafetensorsFloat(oracle("siglip-tiny/model.safetensors"));
        StateDict naflex = hf;  // SigLIP 2 NaFlex: a Linear patch embedding
        naflex["vision_model.embeddings.patch_embedding.weight"] = at::zeros({64, 3 * 8 * 8});
        writeSafetensorsTensors(path("naflex.safetensors"), naflex);
        expectError([&] { loadModel(path("naflex.safetensors")); }, path("naflex.safetensors"), "NaFlex");
        StateDict noHead = hf;
        for (auto it = noHead.begin(); it != noHead.end();) it = it->first.rfind("vision_model.head.", 0) == 0 ? noHead.erase(it) : std::next(it);
        writeSafetensorsTensors(path("nohead.safetensors"), noHead);
        expectError([&] { loadModel(path("nohead.safetensors")); }, path("nohead.safetensors"), "vision_model.head.probe");
        StateDict badKv = timm;
        badKv["attn_pool.kv.weight"] = at::zeros({64, 64});
        writeSafetensorsTensors(path("badkv.safetensors"), badKv);
        expectError([&] { loadModel(path("badkv.safetensors")); }, path("badkv.safetensors"),
                    "'attn_pool.kv.weight' has shape [64, 64], expected [128, 64]");
        StateDict twoProbes = timm;
        twoProbes["attn_pool.latent"] = at::zeros({1, 2, 64});
        writeSafetensorsTensors(path("probes.safetensors"), twoProbes);
        expectError([&] { loadModel(path("probes.safetensors")); }, path("probes.safetensors"), "one probe");
        StateDict badPos = timm;
        badPos["pos_embed"] = at::zeros({1, 15, 64});
        writeSafetensorsTensors(path("sigpos.safetensors"), badPos);
        expectError([&] { loadModel(path("sigpos.safetensors")); }, path("sigpos.safetensors"), "square patch grid");
    }

    void unknownArchitecture() {
        StateDict sd;
        sd["encoder.weight"] = at::zeros({4, 4});
        writeSafetensorsTensors(path("unknown.safetensors"), sd);
        expectError([&] { loadModel(path("unknown.safetensors")); }, path("unknown.safetensors"), "unknown architecture");
        writeFileAtomic(path("notes.txt"), std::string("hello"));
        expectError([&] { loadModel(path("notes.txt")); }, path("notes.txt"), "not a checkpoint");
    }

    // Swin checkpoints that look right but are not: V2 tensors, a wrong-shaped position table,
    // a merging with a wrong width, inputs that do not tile into the windows.
    void swinBadCheckpoints() {
        const StateDict timm = readSafetensorsFloat(oracle("swin-timm/model.safetensors"));
        StateDict v2 = timm;
        v2["layers.0.blocks.0.attn.cpb_mlp.0.weight"] = at::zeros({512, 2});
        writeSafetensorsTensors(path("swinv2.safetensors"), v2);
        expectError([&] { loadModel(path("swinv2.safetensors")); }, path("swinv2.safetensors"), "Swin V2");
        StateDict table = timm;
        table["layers.1.blocks.0.attn.relative_position_bias_table"] = at::zeros({48, 4});
        writeSafetensorsTensors(path("swintable.safetensors"), table);
        expectError([&] { loadModel(path("swintable.safetensors")); }, path("swintable.safetensors"), "relative_position_bias_table");
        StateDict merge = timm;
        merge["layers.1.downsample.reduction.weight"] = at::zeros({64, 100});
        writeSafetensorsTensors(path("swinmerge.safetensors"), merge);
        expectError([&] { loadModel(path("swinmerge.safetensors")); }, path("swinmerge.safetensors"), "layers.1.downsample.reduction.weight");
        StateDict heads = timm;
        heads["layers.1.blocks.1.attn.relative_position_bias_table"] = at::zeros({49, 3});
        writeSafetensorsTensors(path("swinheads.safetensors"), heads);
        expectError([&] { loadModel(path("swinheads.safetensors")); }, path("swinheads.safetensors"), "heads");
        const Model model = loadModel(oracle("swin-timm"));
        expectError([&] { encodeImages(model, at::zeros({1, 3, 64, 48})); }, "pixels", "windows");
    }

    // MaxViT checkpoints of variants vitscope does not read, broken ones, inputs that do not tile.
    void maxvitBadCheckpoints() {
        const StateDict timm = readSafetensorsFloat(oracle("maxvit-timm/model.safetensors"));
        StateDict coat;  // no block attention: a CoAtNet-style MaxxVit
        for (const auto& [name, t] : timm)
            if (name.find("attn_block") == std::string::npos) coat[name] = t;
        writeSafetensorsTensors(path("coat.safetensors"), coat);
        expectError([&] { loadModel(path("coat.safetensors")); }, path("coat.safetensors"), "not supported");
        StateDict rw = timm;  // a Swin-style [(2P-1)^2, H] table: the *_rw_ variants
        rw["stages.0.blocks.0.attn_block.attn.rel_pos.relative_position_bias_table"] = at::zeros({9, 1});
        writeSafetensorsTensors(path("rw.safetensors"), rw);
        expectError([&] { loadModel(path("rw.safetensors")); }, path("rw.safetensors"), "_rw_");
        StateDict var = timm;
        var["stages.1.blocks.0.conv.norm1.running_var"] = -at::ones({256});
        writeSafetensorsTensors(path("var.safetensors"), var);
        expectError([&] { loadModel(path("var.safetensors")); }, path("var.safetensors"), "running_var");
        StateDict part = timm;
        part["stages.1.blocks.1.attn_grid.attn.rel_pos.relative_position_bias_table"] = at::zeros({2, 5, 5});
        writeSafetensorsTensors(path("part.safetensors"), part);
        expectError([&] { loadModel(path("part.safetensors")); }, path("part.safetensors"), "partition");
        const Model model = loadModel(oracle("maxvit-timm"));
        expectError([&] { encodeImages(model, at::zeros({1, 3, 64, 72})); }, "pixels", "partitions");
    }

    void missingPaths() {
        expectError([&] { loadModel(path("nope.safetensors")); }, path("nope.safetensors"), "no such model");
        std::filesystem::create_directories(path("emptydir"));
        expectError([&] { loadModel(path("emptydir")); }, path("emptydir"), "holds no checkpoint");
        expectError([&] { loadImageRgb(path("nope.png")); }, path("nope.png"), "cannot open");
        expectError([&] { loadImageRgb(path("emptydir")); }, path("emptydir"), "directory");
    }

    void badImages() {
        writeFileAtomic(path("text.png"), std::string("this is not an image at all"));
        expectError([&] { loadImageRgb(path("text.png")); }, path("text.png"), "not a readable image");
        writeBytes(path("empty.png"), {});
        expectError([&] { loadImageRgb(path("empty.png")); }, path("empty.png"), "empty");
        auto png = readFileBytes(oracle("clip-tiny/image0.png"));
        // Cut files are refused (decoders would fill the rest with grey and exit 0).
        for (std::size_t cut : {std::size_t(100), png.size() / 2, png.size() - 1}) {
            writeBytes(path("trunc.png"), head(png, cut));
            expectError([&] { loadImageRgb(path("trunc.png")); }, path("trunc.png"), "image file is truncated");
        }
        cv::Mat photo(60, 80, CV_8UC3);
        cv::randu(photo, cv::Scalar::all(0), cv::Scalar::all(255));
        writeImage(path("whole.jpg"), photo);
        QCOMPARE(loadImageRgb(path("whole.jpg")).rows, 60);
        std::vector<const char*> kinds{"jpg"};
#if VITSCOPE_HAVE_OPENCV_IMGCODECS  // the libpng + libjpeg build reads no BMP
        cv::imwrite(path("whole.bmp"), photo);
        QCOMPARE(loadImageRgb(path("whole.bmp")).cols, 80);
        kinds.push_back("bmp");
#endif
        for (const char* ext : kinds) {
            const auto whole = readFileBytes(path(std::string("whole.") + ext));
            const std::string cutName = std::string("trunc.") + ext;
            writeBytes(path(cutName), head(whole, whole.size() * 2 / 3));
            expectError([&] { loadImageRgb(path(cutName)); }, path(cutName), "image file is truncated");
        }
        // A PNG header claiming 20000 x 20000 is refused before any decoding.
        std::vector<uint8_t> huge = head(png, 33);
        const uint32_t side = 20000;
        for (int i = 0; i < 4; ++i) huge[16 + i] = huge[20 + i] = static_cast<uint8_t>(side >> (24 - 8 * i));
        writeBytes(path("huge.png"), huge);
        expectError([&] { loadImageRgb(path("huge.png")); }, path("huge.png"), "20000 x 20000");
    }

    void labelledFolderListsItsFiles() {
        // A dataset folder with labels.csv (images/, masks/) is its "file" column, not every image.
        const std::filesystem::path dir = path("dataset");
        std::filesystem::create_directories(dir / "images");
        std::filesystem::create_directories(dir / "masks");
        cv::Mat img(8, 8, CV_8UC3, cv::Scalar(1, 2, 3));
        for (const char* n : {"b.png", "a.png"}) {
            writeImage((dir / "images" / n).string(), img);
            writeImage((dir / "masks" / n).string(), img);
        }
        writeFileAtomic((dir / "labels.csv").string(), std::string("file,mask,color\nimages/b.png,masks/b.png,red\nimages/a.png,masks/a.png,blue\n"));
        QCOMPARE(listImages(dir.string()),
                 (std::vector<std::string>{(dir / "images/a.png").string(), (dir / "images/b.png").string()}));
        // Without a file column the folder is read recursively, as any other.
        writeFileAtomic((dir / "labels.csv").string(), std::string("name,color\nx,red\n"));
        QCOMPARE(listImages(dir.string()).size(), std::size_t(4));
    }

    void oddImageKinds() {
        // Gray, RGBA and 16-bit inputs all load as 8-bit RGB.
        cv::Mat gray(31, 47, CV_8UC1, cv::Scalar(77));
        writeImage(path("gray.png"), gray);
        const cv::Mat g = loadImageRgb(path("gray.png"));
        QCOMPARE(g.type(), CV_8UC3);
        QCOMPARE(g.at<cv::Vec3b>(3, 3)[1], uint8_t(77));
#if VITSCOPE_HAVE_OPENCV_IMGCODECS  // RGBA and 16-bit files written by OpenCV
        cv::Mat rgba(20, 10, CV_8UC4, cv::Scalar(10, 20, 30, 0));
        cv::Mat deep(12, 12, CV_16UC3, cv::Scalar(65535, 0, 257 * 100));
        cv::imwrite(path("rgba.png"), rgba);
        cv::imwrite(path("deep.png"), deep);
        const cv::Mat a = loadImageRgb(path("rgba.png"));
        QCOMPARE(a.type(), CV_8UC3);
        QCOMPARE(a.at<cv::Vec3b>(0, 0)[0], uint8_t(30));  // BGR(A) 10,20,30 -> RGB 30,20,10
        const cv::Mat d = loadImageRgb(path("deep.png"));
        QCOMPARE(d.type(), CV_8UC3);
        QCOMPARE(d.at<cv::Vec3b>(0, 0)[2], uint8_t(255));
        QCOMPARE(d.at<cv::Vec3b>(0, 0)[0], uint8_t(100));
#endif
    }

    void exifRotation() {
        // A 4x2 JPEG with EXIF orientation 6 (rotate 90 degrees clockwise) loads as 2x4.
        cv::Mat img(2, 4, CV_8UC3, cv::Scalar(0, 0, 255));
        writeImage(path("plain.jpg"), img);
        std::vector<uint8_t> jpg = readFileBytes(path("plain.jpg"));
        const uint8_t exif[] = {0xFF, 0xE1, 0x00, 0x22, 'E', 'x', 'i', 'f', 0, 0, 'I', 'I', 0x2A, 0, 8, 0, 0, 0,
                                1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0};
        jpg.insert(jpg.begin() + 2, exif, exif + sizeof(exif));
        writeBytes(path("rotated.jpg"), jpg);
        const cv::Mat m = loadImageRgb(path("rotated.jpg"));
        QCOMPARE(m.rows, 4);
        QCOMPARE(m.cols, 2);
    }
};

QTEST_GUILESS_MAIN(TestBadInput)
#include "test_bad_input.moc"
