// CLIP BPE tokenizer: identical ids to the reference tokenizer for both vocabulary formats.
#include "io/file_util.h"
#include "io/tensor_io.h"
#include "error.h"
#include "text/sentencepiece_tokenizer.h"
#include "text/text_tokenizer.h"
#include "text/tokenizer.h"
#include "test_util.h"

#include <QtTest/QtTest>
#include <nlohmann/json.hpp>

#include <fstream>
#include <random>

using namespace vitscope;
using vitscope::test::oracle;

namespace {

// The InputError a text with an unknown word gets (an empty-handed read says so instead).
std::string unknownWordError(const WordTokenizer& words, const std::string& text) {
    try {
        words.tokenize(text, 16);
    } catch (const InputError& e) {
        return e.what();
    }
    return "'" + text + "' was read without an error";
}

}  // namespace

class TestTokenizer : public QObject {
    Q_OBJECT

private slots:
    // A word-vocabulary model's unknown word: the message names the closest known words (edit
    // distance, then a shared prefix), or lists a small vocabulary whole.
    void unknownWordsSayWhatTheModelKnows() {
        std::vector<std::string> big;
        for (int i = 0; i < 70; ++i) big.push_back("w" + std::to_string(i));
        for (const char* w : {"a", "of", "dog", "dot", "door", "cat", "circle"}) big.push_back(w);
        const WordTokenizer words = WordTokenizer::fromWords(big);
        QCOMPARE(int(words.knownWords().size()), 77);
        QCOMPARE(words.closest("dgo", 2), std::vector<std::string>{"dog"});  // a transposition is one edit; short words allow one
        QCOMPARE(words.closest("circles", 5).front(), std::string("circle"));
        std::string m = unknownWordError(words, "a photo of a dgo");
        QVERIFY2(m.find("'photo'") != std::string::npos && m.find("vocabulary of 77 words") != std::string::npos, m.c_str());
        m = unknownWordError(words, "a dgo");
        QVERIFY2(m.find("'dgo'") != std::string::npos && m.find("(closest: dog") != std::string::npos, m.c_str());
        const WordTokenizer small = WordTokenizer::fromWords({"red", "blue", "circle"});
        m = unknownWordError(small, "a red square");
        QVERIFY2(m.find("(it knows: red blue circle)") != std::string::npos, m.c_str());
    }

    void matchesReference_data() {
        QTest::addColumn<QString>("path");
        QTest::newRow("merges-gz") << QString::fromStdString(oracle("clip-tiny/openai/bpe_simple_vocab_16e6.txt.gz"));
        QTest::newRow("vocab-json-merges-txt") << QString::fromStdString(oracle("clip-tiny/hf"));
    }

    void matchesReference() {
        QFETCH(QString, path);
        const ClipTokenizer tok = ClipTokenizer::fromPath(path.toStdString());
        QCOMPARE(tok.vocabSize(), std::size_t(49408));
        QCOMPARE(tok.startToken(), int64_t(49406));
        QCOMPARE(tok.endToken(), int64_t(49407));
        const auto texts = nlohmann::json::parse(readFileText(oracle("clip-tiny/texts.json")));
        const at::Tensor expected = readNpyTensor(oracle("clip-tiny/tokens.npy"));
        QCOMPARE(expected.size(0), int64_t(texts.size()));
        for (std::size_t i = 0; i < texts.size(); ++i) {
            const std::vector<int64_t> ids = tok.tokenize(texts[i].get<std::string>());
            const at::Tensor row = expected[static_cast<int64_t>(i)];
            QCOMPARE(int64_t(ids.size()), row.size(0));
            for (std::size_t k = 0; k < ids.size(); ++k)
                QVERIFY2(ids[k] == row[static_cast<int64_t>(k)].item<int64_t>(), texts[i].get<std::string>().c_str());
        }
    }

    void truncationKeepsEndToken() {
        const ClipTokenizer tok = ClipTokenizer::fromPath(oracle("clip-tiny/hf"));
        std::string longText;
        for (int i = 0; i < 200; ++i) longText += "word ";
        const std::vector<int64_t> ids = tok.tokenize(longText);
        QCOMPARE(ids.size(), std::size_t(77));
        QCOMPARE(ids.front(), tok.startToken());
        QCOMPARE(ids.back(), tok.endToken());
    }

    void cleaningAndRoundTrip() {
        const ClipTokenizer tok = ClipTokenizer::fromPath(oracle("clip-tiny/hf"));
        QCOMPARE(clipCleanText("  A&amp;B\t\n  Caf&eacute;  "), std::string("a&b café"));
        QCOMPARE(tok.decode(tok.encode("a photo of a dog, it's 3pm!")), std::string("a photo of a dog , it 's 3 pm !"));
        // Special tokens written in the text map to their ids, as in the reference.
        const std::vector<int64_t> ids = tok.encode("x<|endoftext|>");
        QCOMPARE(ids.back(), tok.endToken());
        // Non-ASCII letters and invalid UTF-8 are tokenised, never dropped silently or crashing.
        QVERIFY(!tok.encode("größe 東京").empty());
        QVERIFY(!tok.encode(std::string("\xff\xfe bad", 6)).empty());
    }

    void boundedFuzz() {
        // The long run is fuzz/run-fuzz.sh under AddressSanitizer; this keeps a short one in the suite.
        const ClipTokenizer tok = ClipTokenizer::fromPath(oracle("clip-tiny/hf"));
        std::mt19937 rng(7);
        for (int i = 0; i < 3000; ++i) {
            std::string s(rng() % 64, '\0');
            for (char& c : s) c = static_cast<char>(rng() % 256);
            for (int64_t id : tok.tokenize(s)) QVERIFY(id >= 0 && id < 49408);
        }
    }

    // SigLIP's SentencePiece tokenizer against python3-sentencepiece on a model trained for the
    // test (tests/data/siglip-spm/make_reference.py made both files).
    void sentencePieceMatchesReference() {
        const std::string dir = vitscope::test::source("tests/data/siglip-spm");
        const nlohmann::json ref = nlohmann::json::parse(vitscope::readFileText(dir + "/reference.json"));
        const auto tok = vitscope::loadTokenizer(dir);  // the folder holding spiece.model
        const auto* sp = dynamic_cast<const vitscope::SentencePieceTokenizer*>(tok.get());
        QVERIFY(sp != nullptr);
        QCOMPARE(sp->vocabSize(), ref["vocab_size"].get<std::size_t>());
        QCOMPARE(sp->endToken(), ref["end"].get<int64_t>());
        QCOMPARE(sp->padToken(), ref["pad"].get<int64_t>());
        const int context = ref["context"].get<int>();
        int checked = 0;
        for (const auto& row : ref["rows"]) {
            const std::vector<int64_t> ids = tok->tokenize(row["text"].get<std::string>(), context);
            const std::vector<int64_t> expected = row["ids"].get<std::vector<int64_t>>();
            QVERIFY2(ids == expected, row["text"].get<std::string>().c_str());
            ++checked;
        }
        QCOMPARE(checked, 8);
        QCOMPARE(vitscope::siglipCleanText("  A  Photo,\tof (a) DOG!  "), std::string("a photo of a dog"));
    }

    void sentencePieceBadFiles() {
        const QTemporaryDir tmp;
        const std::string bad = tmp.filePath("spiece.model").toStdString();
        {
            std::ofstream out(bad, std::ios::binary);
            out << "this is not a protobuf \x01\x02\x03";
        }
        try {
            vitscope::loadTokenizer(bad);
            QFAIL("a corrupt SentencePiece model loaded");
        } catch (const vitscope::Error& e) {
            QVERIFY2(std::string(e.what()).find(bad) != std::string::npos, e.what());
        }
        try {
            vitscope::SentencePieceTokenizer::fromFile(tmp.filePath("missing.model").toStdString());
            QFAIL("a missing SentencePiece model loaded");
        } catch (const vitscope::Error& e) {
            QVERIFY2(std::string(e.what()).find("missing.model") != std::string::npos, e.what());
        }
    }
};

QTEST_GUILESS_MAIN(TestTokenizer)
#include "test_tokenizer.moc"
