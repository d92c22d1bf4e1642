// The shapes world: deterministic scenes whose labels agree with their pixels, the spurious
// splits' co-occurrence rates, captions, and the committed text resources.
#include "image/codec.h"
#include "io/file_util.h"
#include "shapes/dataset.h"
#include "shapes/world.h"
#include "test_util.h"

#include "analysis/labels.h"

#include <QtTest/QtTest>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include <sstream>

using namespace vitscope;
using namespace vitscope::shapes;

class TestShapes : public QObject {
    Q_OBJECT

private slots:
    void deterministic() {
        const Scene a = generateScene(5, 17), b = generateScene(5, 17), c = generateScene(6, 17);
        QCOMPARE(a.image.size(), cv::Size(64, 64));
        QVERIFY(cv::norm(a.image, b.image, cv::NORM_INF) == 0 && cv::norm(a.mask, b.mask, cv::NORM_INF) == 0);
        QVERIFY(a.labels.values == b.labels.values);
        QVERIFY(cv::norm(a.image, c.image, cv::NORM_L1) > 0);
    }

    void labelsAgreeWithPixels() {
        WorldParams params;
        params.distractorProbability = 0.0;
        const double cells[] = {0.21, 0.5, 0.79};
        double smallArea = 0, largeArea = 0;
        int smallCount = 0, largeCount = 0;
        for (uint64_t i = 0; i < 400; ++i) {
            const Scene s = generateScene(11, i, params);
            const cv::Moments m = cv::moments(s.mask, true);
            QVERIFY(m.m00 > 30);
            // The object's centroid lies near the centre of its labelled 3 x 3 cell.
            const int pos = s.labels.value(Attribute::Position);
            QVERIFY(std::abs(m.m10 / m.m00 - cells[pos % 3] * 64) < 7);
            QVERIFY(std::abs(m.m01 / m.m00 - cells[pos / 3] * 64) < 7);
            (s.labels.value(Attribute::Size) == 0 ? smallArea : largeArea) += m.m00;
            ++(s.labels.value(Attribute::Size) == 0 ? smallCount : largeCount);
            // A solid object's pixels are its color, the most saturated of the palette's hues.
            if (s.labels.value(Attribute::Texture) == 0) {
                const cv::Scalar mean = cv::mean(s.image, s.mask);
                int best = -1;
                double bestDist = 1e9;
                const cv::Scalar palette[] = {{220, 30, 30}, {245, 140, 20}, {240, 225, 30}, {40, 180, 40},
                                              {40, 220, 230}, {40, 70, 230},  {150, 50, 200}, {250, 130, 200}};
                for (int c = 0; c < 8; ++c) {
                    const double d = cv::norm(mean - palette[c]);
                    if (d < bestDist) bestDist = d, best = c;
                }
                QCOMPARE(best, s.labels.value(Attribute::Color));
            }
        }
        QVERIFY(largeArea / largeCount > 1.8 * smallArea / smallCount);
    }

    void restrictedWorlds() {
        WorldParams easy;
        easy.textureKinds = 1;
        easy.backgroundKinds = 2;
        easy.distractorProbability = 0;
        for (uint64_t i = 0; i < 200; ++i) {
            const Scene s = generateScene(8, i, easy);
            QCOMPARE(s.labels.value(Attribute::Texture), 0);
            QVERIFY(s.labels.value(Attribute::Background) < 2);
            QVERIFY(!s.labels.distractor);
        }
    }

    void spuriousSplits() {
        for (Split split : {Split::SpuriousTrain, Split::SpuriousTest}) {
            WorldParams params;
            params.split = split;
            int agree = 0;
            const int n = 2000;
            for (int i = 0; i < n; ++i) {
                const Scene s = generateScene(3, uint64_t(i), params);
                QCOMPARE(s.labels.group, shapeGroup(s.labels.value(Attribute::Shape)));
                const int bg = s.labels.value(Attribute::Background);
                QVERIFY(bg == valueIndex(Attribute::Background, "grass") || bg == valueIndex(Attribute::Background, "water"));
                agree += (bg == valueIndex(Attribute::Background, "grass")) == (s.labels.group == 0);
            }
            const double rate = double(agree) / n;
            qInfo("%s: background agrees with group in %.3f", splitName(split), rate);
            QVERIFY(std::abs(rate - (split == Split::SpuriousTrain ? 0.95 : 0.5)) < 0.03);
        }
        QCOMPARE(generateScene(3, 0).labels.group, -1);
    }

    void captions() {
        const Scene s = generateScene(2, 9);
        for (int a = 0; a < 6; ++a) {
            const Attribute attr = kAttributes[std::size_t(a)];
            const std::string text = caption(s.labels, a);
            QCOMPARE(text, singleAttributePrompt(attr, s.labels.value(attr)));
            QVERIFY(text.find(attributeValues(attr)[std::size_t(s.labels.value(attr))]) != std::string::npos);
        }
        const std::string all = caption(s.labels, captionCount() - 1);
        for (Attribute attr : kAttributes)
            QVERIFY2(all.find(attributeValues(attr)[std::size_t(s.labels.value(attr))]) != std::string::npos, all.c_str());
        QCOMPARE(singleAttributePrompt(Attribute::Color, valueIndex(Attribute::Color, "orange")), std::string("an orange object"));
        QCOMPARE(singleAttributePrompt(Attribute::Position, valueIndex(Attribute::Position, "top left")),
                 std::string("an object at the top left"));
        QCOMPARE(singleAttributePrompt(Attribute::Background, valueIndex(Attribute::Background, "grass")),
                 std::string("an object on a grass background"));
    }

    void committedResourcesMatchTheWorld() {
        const std::string pool = readFileText(vitscope::test::source("resources/shapes/text_pool.txt"));
        std::string expected;
        for (const std::string& t : textPool()) expected += t + "\n";
        QVERIFY2(pool == expected, "resources/shapes/text_pool.txt is stale: run vitscope-cli shapes text-resources --out resources/shapes");
        for (Attribute a : kAttributes) {
            std::string words;
            for (const auto& v : attributeValues(a)) words += v + "\n";
            QCOMPARE(readFileText(vitscope::test::source(std::string("resources/shapes/") + attributeName(a) + ".txt")), words);
        }
    }

    void generateWritesDataset() {
        QTemporaryDir dir;
        GenerateParams p;
        p.outDir = dir.path().toStdString();
        p.count = 20;
        p.seed = 4;
        p.world.split = Split::SpuriousTest;
        QCOMPARE(generateDataset(p).written, int64_t(20));
        std::istringstream csv(readFileText(p.outDir + "/labels.csv"));
        std::string line;
        std::getline(csv, line);
        QCOMPARE(line, std::string("file,mask,shape,color,texture,position,size,background,group,distractor_shape,distractor_color,"
                                   "distractor_texture,distractor_position,distractor_size,distractor_mask"));
        const auto rows = readCsvTable(p.outDir + "/labels.csv");
        QCOMPARE(rows.size(), std::size_t(20));
        int distractors = 0;
        for (const auto& row : rows) {
            QVERIFY(QFileInfo::exists(QString::fromStdString(p.outDir + "/" + row.at("file"))));
            QVERIFY(row.at("group") == "0" || row.at("group") == "1");
            if (row.at("distractor_mask").empty()) {
                for (const char* k : {"distractor_shape", "distractor_color", "distractor_texture", "distractor_position", "distractor_size"})
                    QVERIFY(row.at(k).empty());
                continue;
            }
            ++distractors;
            // Another shape and color; its visible mask never overlaps the object's.
            QVERIFY(row.at("distractor_shape") != row.at("shape") && row.at("distractor_color") != row.at("color"));
            QVERIFY(row.at("distractor_position") != row.at("position"));
            const cv::Mat object = readImage(p.outDir + "/" + row.at("mask"), true);
            const cv::Mat other = readImage(p.outDir + "/" + row.at("distractor_mask"), true);
            QVERIFY(cv::countNonZero(other) > 10);
            cv::Mat both;
            cv::bitwise_and(object, other, both);
            QCOMPARE(cv::countNonZero(both), 0);
        }
        QVERIFY(distractors > 0);
    }
};

QTEST_GUILESS_MAIN(TestShapes)
#include "test_shapes.moc"
