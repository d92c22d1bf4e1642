#pragma once
// The tokenizers a model can come with: CLIP's BPE, or a word-level vocabulary (vocab.txt, one
// token per line, as the bundled shapes models store it). Torch-free.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace vitscope {

class TextTokenizer {
public:
    virtual ~TextTokenizer() = default;
    // [start] + ids + [end], truncated to `context` keeping the end token, zero padded.
    virtual std::vector<int64_t> tokenize(const std::string& text, int context) const = 0;
    virtual std::size_t vocabSize() const = 0;
};

// A word-level vocabulary: id 0 pads, the last two ids are <start> and <end>; text is lowercased
// and split on spaces and punctuation. Unknown words raise InputError naming the word.
class WordTokenizer : public TextTokenizer {
public:
    static WordTokenizer fromFile(const std::string& path);
    static WordTokenizer fromWords(const std::vector<std::string>& words);  // adds <pad>, <start>, <end>
    std::vector<int64_t> tokenize(const std::string& text, int context) const override;
    std::size_t vocabSize() const override { return m_words.size(); }
    const std::vector<std::string>& words() const { return m_words; }
    // The vocabulary's words (no <pad>, <start>, <end>), and those closest in spelling to `word`
    // (edit distance with transpositions <= 2, or 1 for words of up to 3 letters; or a shared
    // prefix of 2 letters; nearest first, at most `count`).
    std::vector<std::string> knownWords() const;
    std::vector<std::string> closest(const std::string& word, std::size_t count) const;
    void save(const std::string& path) const;

private:
    std::vector<std::string> m_words;
    std::vector<std::pair<std::string, int64_t>> m_sorted;  // for lookup
    int64_t find(const std::string& word) const;
};

// Splits text the way WordTokenizer does (lowercase words, punctuation dropped).
std::vector<std::string> splitWordsSimple(const std::string& text);

// Opens whatever `path` names: vocab.txt (or a directory holding one) -> WordTokenizer;
// a SentencePiece .model (or a directory holding spiece.model) -> SentencePieceTokenizer (SigLIP);
// otherwise CLIP BPE (merges .gz, or vocab.json + merges.txt).
std::unique_ptr<TextTokenizer> loadTokenizer(const std::string& path);

}  // namespace vitscope
