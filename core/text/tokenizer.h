#pragma once
// CLIP's byte-level BPE tokenizer: text cleaning (HTML unescape, whitespace collapse, Unicode
// lowercase), CLIP's pre-tokenisation split, BPE with '</w>' word ends. Reads either CLIP's
// merges file (.txt.gz) or a Hugging Face vocab.json + merges.txt pair. Torch-free.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace vitscope {

class ClipTokenizer {
public:
    static constexpr int kContextLength = 77;

    // `path`: a merges .gz / .txt file, or a directory holding vocab.json + merges.txt (or a .gz).
    static ClipTokenizer fromPath(const std::string& path);
    // Builds from in-memory merges text (the content of CLIP's merges file, first line a header).
    static ClipTokenizer fromMergesText(const std::string& text, const std::string& where);
    static ClipTokenizer fromVocabAndMerges(const std::string& vocabJson, const std::string& mergesText,
                                            const std::string& where);

    std::vector<int64_t> encode(const std::string& text) const;  // without start / end tokens
    // [start] + encode(text) + [end], truncated to `context` keeping the end token, zero padded.
    std::vector<int64_t> tokenize(const std::string& text, int context = kContextLength) const;
    std::string decode(const std::vector<int64_t>& ids) const;

    int64_t startToken() const { return m_start; }
    int64_t endToken() const { return m_end; }
    std::size_t vocabSize() const { return m_decoder.size(); }

private:
    std::vector<int64_t> bpe(const std::string& token) const;

    std::unordered_map<std::string, int64_t> m_encoder;
    std::vector<std::string> m_decoder;
    std::unordered_map<std::string, int> m_ranks;  // "a b" -> merge rank
    int64_t m_start = 49406;
    int64_t m_end = 49407;
    mutable std::unordered_map<std::string, std::vector<int64_t>> m_cache;
};

// The cleaning steps, exposed for tests.
std::string clipCleanText(const std::string& text);
// Full Unicode lowercasing (root locale), as Python's str.lower() does.
std::string unicodeLower(const std::string& utf8);

}  // namespace vitscope
