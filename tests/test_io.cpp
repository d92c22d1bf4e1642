// safetensors / npy readers and writers: round trips, validation of every header field, and a
// short bounded fuzz run (the long one is fuzz/run-fuzz.sh under AddressSanitizer).
#include "error.h"
#include "image/codec.h"
#include "io/file_util.h"
#include "io/imagenet_seg.h"
#include "io/imagenet_val.h"
#include "io/matlab_v5.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "io/tensor_io.h"
#include "../fuzz/mutator.h"
#include "test_util.h"

#include <QtTest/QtTest>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#if VITSCOPE_HAVE_OPENCV_IMGCODECS
#include <opencv2/imgcodecs.hpp>
#endif

using namespace vitscope;

namespace {

std::vector<uint8_t> withHeader(const std::string& json, std::size_t dataBytes) {
    std::vector<uint8_t> b(8);
    for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(json.size() >> (8 * i));
    b.insert(b.end(), json.begin(), json.end());
    b.resize(b.size() + dataBytes, 0);
    return b;
}

// A JPEG with an EXIF APP1 segment (little-endian TIFF, one IFD entry: Orientation) after SOI.
std::vector<uint8_t> withOrientation(std::vector<uint8_t> jpg, uint8_t orientation) {
    const uint8_t exif[] = {0xFF, 0xE1, 0x00, 0x22, 'E', 'x', 'i', 'f', 0, 0, 'I', 'I', 0x2A, 0, 8, 0, 0, 0,
                            1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, orientation, 0, 0, 0, 0, 0, 0, 0};
    jpg.insert(jpg.begin() + 2, exif, exif + sizeof(exif));
    return jpg;
}

bool samePixels(const cv::Mat& a, const cv::Mat& b) {
    return a.type() == b.type() && a.size() == b.size() && (a.empty() || cv::norm(a, b, cv::NORM_INF) == 0);
}

cv::Mat noise(int rows, int cols, int type, uint64_t seed) {
    cv::Mat m(rows, cols, type);
    cv::RNG rng(seed);
    rng.fill(m, cv::RNG::UNIFORM, 0, CV_MAT_DEPTH(type) == CV_16U ? 65536 : 256);
    cv::GaussianBlur(m, m, {5, 5}, 1.5);  // photo-like content, so JPEG has something to keep
    return m;
}

template <typename E = FormatError, typename Fn>
QString errorOf(Fn fn) {
    try {
        fn();
    } catch (const E& e) {
        return QString::fromStdString(e.what());
    } catch (const std::exception& e) {
        return "wrong exception type: " + QString::fromStdString(e.what());
    }
    return "no error";
}

}  // namespace

class TestIo : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    std::string path(const char* name) { return (m_dir.path() + "/" + name).toStdString(); }

private slots:
    // The ImageNet segmentation file's layout (tests/data/imagenet-seg/make_mat.py writes it as
    // the real one is, object references and MATLAB's column order included): every scene's
    // pixels and mask as the references' reader returns them.
    void imagenetSegReader() {
        if (!imagenetSegSupported()) QSKIP("this build has no HDF5 (libhdf5-dev)");
        const std::string dir = vitscope::test::source("tests/data/imagenet-seg");
        std::ifstream in(dir + "/expected.json");
        QVERIFY(in.good());
        const nlohmann::json expected = nlohmann::json::parse(in);
        QCOMPARE(fileSha256(dir + "/tiny.mat"), expected["file_sha256"].get<std::string>());
        const ImagenetSegFile f(dir + "/tiny.mat");
        QCOMPARE(f.size(), int64_t(expected["scenes"].size()));
        for (int64_t i = 0; i < f.size(); ++i) {
            const auto& e = expected["scenes"][static_cast<std::size_t>(i)];
            const cv::Mat img = f.image(i), mask = f.mask(i);
            QCOMPARE(img.rows, e["height"].get<int>());
            QCOMPARE(img.cols, e["width"].get<int>());
            QCOMPARE(mask.rows, img.rows);
            QCOMPARE(mask.cols, img.cols);
            QVERIFY(img.isContinuous() && mask.isContinuous());
            QCOMPARE(sha256Hex(std::string(reinterpret_cast<const char*>(img.data), img.total() * 3)), e["image_sha256"].get<std::string>());
            QCOMPARE(sha256Hex(std::string(reinterpret_cast<const char*>(mask.data), mask.total())), e["mask_sha256"].get<std::string>());
            QCOMPARE(cv::countNonZero(mask), e["object_pixels"].get<int>());
        }
        // FIPS 180-4's own examples.
        QCOMPARE(sha256Hex("abc"), std::string("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
        QCOMPARE(sha256Hex(""), std::string("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
        QCOMPARE(sha256Hex(std::string(1000000, 'a')), std::string("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
    }

    void imagenetSegReaderRefusesOtherFiles() {
        if (!imagenetSegSupported()) QSKIP("this build has no HDF5 (libhdf5-dev)");
        // Not HDF5, an HDF5 file of another layout (a safetensors file is neither), a missing file.
        writeFileAtomic(path("text.mat"), std::string("MATLAB 5.0 MAT-file, not HDF5"));
        const QString notHdf5 = errorOf([&] { ImagenetSegFile f(path("text.mat")); });
        QVERIFY2(notHdf5.contains("text.mat") && notHdf5.contains("not an HDF5 file"), qPrintable(notHdf5));
        bool missing = false;
        try {
            ImagenetSegFile f(path("absent.mat"));
        } catch (const IoError& e) {
            missing = QString(e.what()).contains("absent.mat");
        }
        QVERIFY(missing);
        // The real layout with one dataset gone: a truncated copy of tiny.mat keeps its header
        // but loses the rest.
        const std::vector<uint8_t> whole = readFileBytes(vitscope::test::source("tests/data/imagenet-seg/tiny.mat"));
        writeFileAtomic(path("cut.mat"), std::vector<uint8_t>(whole.begin(), whole.begin() + 2048));
        const QString cut = errorOf([&] { ImagenetSegFile f(path("cut.mat")); });
        QVERIFY2(cut.contains("cut.mat") && !cut.startsWith("wrong exception") && cut != "no error", qPrintable(cut));
    }

    // ImageNet's devkit as scipy.io.savemat writes meta.mat (compressed, chars in UTF-8, IDs in
    // double and uint16; tests/data/imagenet-devkit/make_devkit.py) and Kaggle's CSV of the same
    // images: the leaf synsets in the file's order, and every image's label in the sorted-wnid
    // order, which is not the ILSVRC2012_ID order.
    void imagenetDevkitGroundTruth() {
        const std::string dir = vitscope::test::source("tests/data/imagenet-devkit");
        std::ifstream in(dir + "/expected.json");
        QVERIFY(in.good());
        const nlohmann::json expected = nlohmann::json::parse(in);
        const std::vector<DevkitClass> leaves = readDevkitClasses(dir + "/ILSVRC2012_devkit_t12/data/meta.mat");
        QCOMPARE(leaves.size(), std::size_t(4));  // the 2 inner synsets (num_children > 0) left out
        for (std::size_t i = 0; i < leaves.size(); ++i) {
            QCOMPARE(leaves[i].id, expected["leaf_ids"][i].get<int64_t>());
            QCOMPARE(leaves[i].wnid, expected["leaf_wnids"][i].get<std::string>());
        }
        QCOMPARE(leaves[3].words, std::string("English springer, English springer spaniel"));
        const std::map<std::string, int64_t> labels = expected["labels"].get<std::map<std::string, int64_t>>();
        for (const std::string& arg : {dir + "/ILSVRC2012_devkit_t12", dir + "/ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt",
                                        dir + "/kaggle/LOC_val_solution.csv", dir + "/kaggle"}) {
            const ImagenetGroundTruth gt = readImagenetGroundTruth(arg);
            QCOMPARE(gt.wnids, expected["wnids"].get<std::vector<std::string>>());
            QCOMPARE(gt.names, expected["names"].get<std::vector<std::string>>());
            QCOMPARE(gt.labelOf, labels);
            QCOMPARE(gt.files.size(), std::size_t(2));
        }
        // Images by file name (any extension, any folder), refusals naming the file.
        std::vector<std::string> images;
        for (const auto& [name, label] : labels) images.push_back("/val/" + name + ".JPEG");
        const ImagenetGroundTruth gt = readImagenetGroundTruth(dir + "/ILSVRC2012_devkit_t12");
        const std::vector<int64_t> got = labelImages(gt, images, "/val");
        QCOMPARE(got[0], labels.at("ILSVRC2012_val_00000001"));
        QCOMPARE(got[8], labels.at("ILSVRC2012_val_00000009"));
        const QString fewer = errorOf<InputError>([&] { labelImages(gt, std::vector<std::string>(images.begin(), images.end() - 1), "/val"); });
        QVERIFY2(fewer.startsWith("/val: holds 8 images") && fewer.contains("lists 9") && fewer.contains("ILSVRC2012_val_00000009 is missing") &&
                     fewer.contains("ILSVRC2012_validation_ground_truth.txt"), qPrintable(fewer));
        images.push_back("/val/ILSVRC2012_val_00000010.JPEG");
        const QString extra = errorOf<InputError>([&] { labelImages(gt, images, "/val"); });
        QVERIFY2(extra.startsWith("/val/ILSVRC2012_val_00000010.JPEG: has no line in the ground truth"), qPrintable(extra));
    }

    void imagenetGroundTruthRefusals() {
        const std::string dir = vitscope::test::source("tests/data/imagenet-devkit");
        const std::string meta = readFileText(dir + "/ILSVRC2012_devkit_t12/data/meta.mat");
        auto devkit = [&](const char* name, const std::string& truth) {
            const std::string d = path(name);
            std::filesystem::create_directories(d + "/data");
            writeFileAtomic(d + "/data/meta.mat", meta);
            writeFileAtomic(d + "/data/ILSVRC2012_validation_ground_truth.txt", truth);
            return errorOf([&] { readImagenetGroundTruth(d); });
        };
        const QString id = devkit("dk-id", "3\n2\n7\n");
        QVERIFY2(id.contains("dk-id/data/ILSVRC2012_validation_ground_truth.txt: line 3: ILSVRC2012_ID 7 is not a class") && id.contains("(1..4)"),
                 qPrintable(id));
        const QString word = devkit("dk-word", "3\nfour\n");
        QVERIFY2(word.contains("ground_truth.txt: line 2: 'four' is not an ILSVRC2012_ID"), qPrintable(word));
        std::filesystem::create_directories(path("dk-none"));
        QVERIFY(errorOf<InputError>([&] { readImagenetGroundTruth(path("dk-none")); }).contains("holds neither the devkit"));
        // Kaggle's CSV: a wnid outside LOC_synset_mapping.txt, an image twice, another header.
        auto kaggle = [&](const char* name, const std::string& csv) {
            const std::string d = path(name);
            std::filesystem::create_directories(d);
            writeFileAtomic(d + "/LOC_synset_mapping.txt", readFileText(dir + "/kaggle/LOC_synset_mapping.txt"));
            writeFileAtomic(d + "/LOC_val_solution.csv", csv);
            return errorOf([&] { readImagenetGroundTruth(d + "/LOC_val_solution.csv"); });
        };
        const QString wnid = kaggle("kg-wnid", "ImageId,PredictionString\nILSVRC2012_val_00000001,n01440764 1 2 3 4\nILSVRC2012_val_00000002,n09999999 1 2 3 4\n");
        QVERIFY2(wnid.contains("LOC_val_solution.csv: line 3: wnid n09999999 is not in") && wnid.contains("LOC_synset_mapping.txt"), qPrintable(wnid));
        const QString twice = kaggle("kg-twice", "ImageId,PredictionString\nILSVRC2012_val_00000001,n01440764 1\nILSVRC2012_val_00000001,n01440764 1\n");
        QVERIFY2(twice.contains("line 3: image ILSVRC2012_val_00000001 is listed twice"), qPrintable(twice));
        const QString header = kaggle("kg-header", "id,label\n");
        QVERIFY2(header.contains("LOC_val_solution.csv: does not start with the header"), qPrintable(header));
    }

    // The level-5 reader on its own writer's files (structs, cells, strings, numbers) and on
    // broken ones: every bad file is one FormatError naming the file, never a crash or a huge
    // allocation.
    void matlabV5() {
        MatValue cell;
        cell.kind = MatValue::Kind::Cell;
        cell.dims = {1, 2};
        cell.elements = {matString("x y"), matScalar(-2.5)};
        std::vector<MatValue> elements;
        for (int i = 0; i < 3; ++i)
            for (MatValue v : {matScalar(10 + i), matString("n0" + std::to_string(i)), cell}) elements.push_back(v);
        writeMatV5(path("round.mat"), {{"s", matStruct({"ILSVRC2012_ID", "WNID", "c"}, 3, elements)}, {"pi", matScalar(3.25)}});
        const MatFile f = readMatV5(path("round.mat"));
        QCOMPARE(f.variables.size(), std::size_t(2));
        QCOMPARE(f.at("pi").scalar("pi"), 3.25);
        const MatValue& s = f.at("s");
        QCOMPARE(s.numel(), int64_t(3));
        QCOMPARE(s.field(2, "ILSVRC2012_ID").scalar("id"), 12.0);
        QCOMPARE(s.field(1, "WNID").text, std::string("n01"));
        QCOMPARE(s.field(0, "c").elements[0].text, std::string("x y"));
        QCOMPARE(s.field(0, "c").elements[1].scalar("c{2}"), -2.5);
        QVERIFY(errorOf([&] { s.field(0, "words"); }).contains("no field 'words'"));
        QVERIFY(errorOf([&] { f.at("synsets"); }).endsWith("round.mat: holds no variable 'synsets'"));
        // Every truncation of both files (this writer's and scipy's compressed one).
        const std::vector<uint8_t> mine = readFileBytes(path("round.mat"));
        const std::vector<uint8_t> scipy = readFileBytes(vitscope::test::source("tests/data/imagenet-devkit/ILSVRC2012_devkit_t12/data/meta.mat"));
        for (const auto* whole : {&mine, &scipy})
            for (std::size_t n = 0; n < whole->size(); n += 3) {
                const QString e = errorOf([&] { parseMatV5(whole->data(), n, "cut.mat"); });
                QVERIFY2(e == "no error" || (e.startsWith("cut.mat: ") && !e.contains('\n')), qPrintable(QString::number(n) + ": " + e));  // whole variables may remain
            }
        // Not level 5: MATLAB 7.3 (HDF5), big-endian, text; an absurd struct size; corrupt zlib.
        auto headerError = [&](std::vector<uint8_t> b) { return errorOf([&] { parseMatV5(b.data(), b.size(), "x.mat"); }); };
        std::vector<uint8_t> v73 = mine;
        std::memcpy(v73.data(), "MATLAB 7.3 MAT-file", 19);
        QVERIFY(headerError(v73).contains("MATLAB 7.3 (HDF5)"));
        std::vector<uint8_t> big = mine;
        big[126] = 'M', big[127] = 'I';
        QVERIFY(headerError(big).contains("big-endian"));
        QVERIFY(headerError(std::vector<uint8_t>(200, 'a')).contains("not a level-5 MAT-file"));
        std::vector<uint8_t> huge = mine;  // s's dimensions [3, 1] -> [2^30, 1]: more elements than bytes
        const uint8_t dims[8] = {3, 0, 0, 0, 1, 0, 0, 0};
        const auto at = std::search(huge.begin() + 128, huge.end(), dims, dims + 8);
        QVERIFY(at != huge.end());
        at[3] = 0x40;
        QVERIFY2(headerError(huge).contains("struct elements"), qPrintable(headerError(huge)));
        std::vector<uint8_t> zip = scipy;
        for (std::size_t i = 140; i < 180; ++i) zip[i] ^= 0x5a;
        QVERIFY2(headerError(zip).contains("compressed element is corrupt"), qPrintable(headerError(zip)));
        // Mutations parse or raise FormatError; nothing else.
        fuzz::Mutator mutator(7);
        int parsed = 0, rejected = 0;
        for (int i = 0; i < 4000; ++i) {
            const std::vector<uint8_t> in = mutator.mutate(i % 2 ? mine : scipy);
            try {
                parseMatV5(in.data(), in.size(), "fuzz");
                ++parsed;
            } catch (const FormatError&) {
                ++rejected;
            }
        }
        QVERIFY(parsed > 0 && rejected > 0);
    }

    void safetensorsRoundTrip() {
        at::manual_seed(9102);  // the draws below are part of the test: fixed
        StateDict t;
        t["w"] = at::randn({3, 4});
        t["h"] = at::randn({5}).to(at::kHalf);
        t["b"] = at::randn({2, 2}).to(at::kBFloat16);
        t["i"] = at::arange(7, at::kLong);
        writeSafetensorsTensors(path("a.safetensors"), t, {{"format", "pt"}});
        SafetensorsFile file(path("a.safetensors"));
        QCOMPARE(file.view().entries.size(), std::size_t(4));
        QCOMPARE(file.view().metadata.at("format"), std::string("pt"));
        std::map<std::string, std::string> meta;
        const StateDict back = readSafetensorsFloat(path("a.safetensors"), &meta);
        QVERIFY(at::equal(back.at("w"), t.at("w")));
        QVERIFY(at::equal(back.at("h"), t.at("h").to(at::kFloat)));
        QVERIFY(at::equal(back.at("b"), t.at("b").to(at::kFloat)));
        QCOMPARE(back.at("i").scalar_type(), at::kLong);
        QVERIFY(at::equal(back.at("i"), t.at("i")));
    }

    void safetensorsValidation_data() {
        QTest::addColumn<QByteArray>("bytes");
        QTest::addColumn<QString>("expected");
        auto row = [](const char* name, const std::vector<uint8_t>& b, const char* expected) {
            QTest::newRow(name) << QByteArray(reinterpret_cast<const char*>(b.data()), int(b.size())) << QString(expected);
        };
        row("too-short", {1, 2, 3}, "too short");
        std::vector<uint8_t> hugeLen(16, 0);
        hugeLen[7] = 0x10;
        row("header-length-past-end", hugeLen, "exceeds the file size");
        row("not-json", withHeader("{nope", 0), "not a valid JSON object");
        row("json-array", withHeader("[1,2]", 0), "not a valid JSON object");
        row("bad-dtype", withHeader(R"({"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}})", 4), "unsupported dtype");
        row("negative-dim", withHeader(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4), "negative");
        row("size-mismatch", withHeader(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4), "need 8");
        row("offset-past-data", withHeader(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 4), "outside");
        row("reversed-offsets", withHeader(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}})", 4), "outside");
        row("overlap", withHeader(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
            "overlap");
        row("shape-overflow",
            withHeader(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,4]}})", 4),
            "overflows");
        row("missing-offsets", withHeader(R"({"a":{"dtype":"F32","shape":[1]}})", 4), "data_offsets");
        row("bad-metadata", withHeader(R"({"__metadata__":{"x":1}})", 0), "not a string");
    }

    void safetensorsValidation() {
        QFETCH(QByteArray, bytes);
        QFETCH(QString, expected);
        const QString message = errorOf([&] {
            parseSafetensors(reinterpret_cast<const uint8_t*>(bytes.data()), std::size_t(bytes.size()), "x.safetensors");
        });
        QVERIFY2(message.startsWith("x.safetensors: ") && message.contains(expected), qPrintable(message));
        QVERIFY(!message.contains('\n'));
    }

    void npyRoundTrip() {
        at::manual_seed(9100);  // the draws below are part of the test: fixed
        for (const at::Tensor& t : {at::randn({2, 3, 4}), at::randn({5}).to(at::kHalf), at::arange(12, at::kLong).view({3, 4}),
                                    at::randn({0, 3}), at::full({}, 3.5)}) {
            writeNpyTensor(path("a.npy"), t);
            const at::Tensor back = readNpyTensor(path("a.npy"));
            QCOMPARE(back.scalar_type(), t.scalar_type());
            QCOMPARE(back.sizes().vec(), t.sizes().vec());
            QVERIFY(at::equal(back, t));
            const std::vector<uint8_t> bytes = readFileBytes(path("a.npy"));
            QCOMPARE((bytes[8] + 10) % 64, 0);  // header padded to 64 bytes as numpy writes it
        }
    }

    void npyValidation_data() {
        QTest::addColumn<QByteArray>("bytes");
        QTest::addColumn<QString>("expected");
        auto npy = [](const std::string& header, std::size_t data) {
            std::string s = std::string("\x93NUMPY\x01\x00", 8);
            s.push_back(static_cast<char>(header.size()));
            s.push_back(0);
            return QByteArray::fromStdString(s + header + std::string(data, '\0'));
        };
        QTest::newRow("bad-magic") << QByteArray("PK\x03\x04 not npy") << "bad magic";
        QTest::newRow("truncated-data") << npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 8) << "needs 12";
        QTest::newRow("extra-data") << npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 8) << "needs 4";
        QTest::newRow("fortran") << npy("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", 4) << "Fortran";
        QTest::newRow("big-endian") << npy("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", 4) << "unsupported";
        QTest::newRow("no-shape") << npy("{'descr': '<f4', 'fortran_order': False, }", 4) << "shape";
        QTest::newRow("bad-dim") << npy("{'descr': '<f4', 'fortran_order': False, 'shape': (a,), }", 4) << "non-integer";
        QTest::newRow("overflow") << npy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 4)
                                  << "overflows";
        QTest::newRow("header-past-end") << QByteArray("\x93NUMPY\x01\x00\xff\x00{", 11) << "truncated";
    }

    void npyValidation() {
        QFETCH(QByteArray, bytes);
        QFETCH(QString, expected);
        const QString message = errorOf(
            [&] { parseNpy(reinterpret_cast<const uint8_t*>(bytes.data()), std::size_t(bytes.size()), "x.npy"); });
        QVERIFY2(message.startsWith("x.npy: ") && message.contains(expected), qPrintable(message));
    }

    void boundedFuzz() {
        at::manual_seed(9101);  // the draws below are part of the test: fixed
        // Mutations of valid files either parse or raise FormatError; never anything else.
        StateDict t;
        t["a"] = at::randn({2, 3});
        t["b"] = at::randn({4}).to(at::kHalf);
        writeSafetensorsTensors(path("seed.safetensors"), t);
        writeNpyTensor(path("seed.npy"), at::randn({3, 4}));
        const std::vector<uint8_t> stSeed = readFileBytes(path("seed.safetensors"));
        const std::vector<uint8_t> npySeed = readFileBytes(path("seed.npy"));
        fuzz::Mutator mutator(42);
        int parsed = 0, rejected = 0;
        for (int i = 0; i < 5000; ++i) {
            for (const auto* seed : {&stSeed, &npySeed}) {
                const std::vector<uint8_t> in = mutator.mutate(*seed);
                try {
                    if (seed == &stSeed) {
                        const SafetensorsView v = parseSafetensors(in.data(), in.size(), "fuzz");
                        for (const auto& e : v.entries) QVERIFY(e.end <= v.dataSize && e.begin <= e.end);
                    } else {
                        const NpyArray a = parseNpy(in.data(), in.size(), "fuzz");
                        QCOMPARE(a.bytes.size(), std::size_t(a.count()) * dtypeSize(a.dtype));
                    }
                    ++parsed;
                } catch (const FormatError&) {
                    ++rejected;
                }
            }
        }
        qInfo("bounded fuzz: %d parsed, %d rejected", parsed, rejected);
        QVERIFY(rejected > 0 && parsed > 0);
    }

    void builtinCodecsMatchOpenCv() {
        // The headless build's libpng / libjpeg decoders give OpenCV's pixels, byte for byte.
        if (!builtin_codecs::available()) QSKIP("built without libpng / libjpeg");
#if !VITSCOPE_HAVE_OPENCV_IMGCODECS
        QSKIP("built without OpenCV imgcodecs: nothing to compare with");
#else
        auto opencv = [](const std::vector<uint8_t>& b) { return cv::imdecode(b, cv::IMREAD_COLOR | cv::IMREAD_ANYDEPTH); };
        int compared = 0;
        auto check = [&](const std::vector<uint8_t>& bytes, const char* what) {
            const cv::Mat ours = builtin_codecs::decode(bytes, what), theirs = opencv(bytes);
            QVERIFY2(!theirs.empty(), what);
            QVERIFY2(samePixels(ours, theirs), what);
            ++compared;
        };
        for (int type : {CV_8UC3, CV_8UC1, CV_8UC4, CV_16UC3, CV_16UC1}) {
            std::vector<uint8_t> png;
            QVERIFY(cv::imencode(".png", noise(37, 53, type, 7 + type), png));
            check(png, "png");
        }
        for (int type : {CV_8UC3, CV_8UC1}) {
            for (bool progressive : {false, true}) {
                std::vector<uint8_t> jpg;
                QVERIFY(cv::imencode(".jpg", noise(45, 61, type, 11 + type), jpg, {cv::IMWRITE_JPEG_PROGRESSIVE, progressive ? 1 : 0}));
                check(jpg, "jpeg");
                if (type == CV_8UC3 && !progressive)
                    for (uint8_t o = 1; o <= 8; ++o) check(withOrientation(jpg, o), "jpeg with EXIF orientation");
            }
        }
        QCOMPARE(compared, 5 + 4 + 8);
        // Files the builtin encoders write read back the same through OpenCV (PNG: the pixels).
        const cv::Mat bgr = noise(29, 31, CV_8UC3, 3), gray = noise(29, 31, CV_8UC1, 4);
        QVERIFY(samePixels(opencv(builtin_codecs::encodePng(bgr, "bgr.png")), bgr));
        cv::Mat grayAsBgr;
        cv::cvtColor(gray, grayAsBgr, cv::COLOR_GRAY2BGR);
        QVERIFY(samePixels(opencv(builtin_codecs::encodePng(gray, "gray.png")), grayAsBgr));
        check(builtin_codecs::encodeJpeg(bgr, 90, "bgr.jpg"), "builtin jpeg");
#endif
    }

    void builtinCodecsRoundTripAndErrors() {
        if (!builtin_codecs::available()) QSKIP("built without libpng / libjpeg");
        const cv::Mat bgr = noise(20, 24, CV_8UC3, 5);
        const std::vector<uint8_t> png = builtin_codecs::encodePng(bgr, "a.png");
        QVERIFY(samePixels(builtin_codecs::decode(png, "a.png"), bgr));
        // Rotations as the EXIF orientation says: 6 turns a 20 x 24 image into 24 x 20, clockwise.
        const std::vector<uint8_t> jpg = builtin_codecs::encodeJpeg(bgr, 95, "a.jpg");
        const cv::Mat upright = builtin_codecs::decode(jpg, "a.jpg");
        const cv::Mat turned = builtin_codecs::decode(withOrientation(jpg, 6), "b.jpg");
        QCOMPARE(turned.rows, 24);
        QCOMPARE(turned.cols, 20);
        cv::Mat expected;
        cv::rotate(upright, expected, cv::ROTATE_90_CLOCKWISE);
        QVERIFY(samePixels(turned, expected));
        // Not PNG / JPEG: empty (the caller names the file); corrupt: one line naming the file.
        QVERIFY(builtin_codecs::decode({'B', 'M', 0, 0}, "x.bmp").empty());
        std::vector<uint8_t> bad = png;
        bad[29] ^= 0xFF;  // the IHDR chunk's CRC
        QVERIFY(errorOf([&] { builtin_codecs::decode(bad, "bad.png"); }).startsWith("bad.png: cannot decode PNG image"));
        std::vector<uint8_t> badJpeg = jpg;  // its SOF0 frame header claims a width of 0
        std::size_t sof = 2;
        while (sof + 9 < badJpeg.size() && !(badJpeg[sof] == 0xFF && badJpeg[sof + 1] == 0xC0)) ++sof;
        QVERIFY(sof + 9 < badJpeg.size());
        badJpeg[sof + 7] = badJpeg[sof + 8] = 0;
        const QString jpegError = errorOf([&] { builtin_codecs::decode(badJpeg, "bad.jpg"); });
        QVERIFY2(jpegError.startsWith("bad.jpg: cannot decode JPEG image: "), qPrintable(jpegError));
        QVERIFY(errorOf([&] { builtin_codecs::encodePng(cv::Mat(4, 4, CV_32FC1), "f.png"); }).contains("8-bit gray or BGR"));
    }

    void missingAndDirectoryPaths() {
        QVERIFY_THROWS_EXCEPTION(IoError, readFileBytes(path("does-not-exist")));
        QVERIFY_THROWS_EXCEPTION(IoError, readFileBytes(m_dir.path().toStdString()));
        QVERIFY_THROWS_EXCEPTION(IoError, SafetensorsFile(path("does-not-exist")));
    }
};

QTEST_GUILESS_MAIN(TestIo)
#include "test_io.moc"
