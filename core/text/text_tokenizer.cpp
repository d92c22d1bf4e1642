#include "text/text_tokenizer.h"

#include "text/sentencepiece_tokenizer.h"

#include "error.h"
#include "io/file_util.h"
#include "text/tokenizer.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <sstream>

namespace vitscope {

namespace {

class BpeAdapter : public TextTokenizer {
public:
    explicit BpeAdapter(ClipTokenizer t) : m_t(std::move(t)) {}
    std::vector<int64_t> tokenize(const std::string& text, int context) const override { return m_t.tokenize(text, context); }
    std::size_t vocabSize() const override { return m_t.vocabSize(); }

private:
    ClipTokenizer m_t;
};

}  // namespace

std::vector<std::string> splitWordsSimple(const std::string& text) {
    std::vector<std::string> words;
    std::string cur;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c >= 0x80) {
            cur.push_back(static_cast<char>(std::tolower(c)));
        } else if (!cur.empty()) {
            words.push_back(cur);
            cur.clear();
        }
    }
    if (!cur.empty()) words.push_back(cur);
    return words;
}

WordTokenizer WordTokenizer::fromWords(const std::vector<std::string>& words) {
    WordTokenizer t;
    t.m_words.push_back("<pad>");
    for (const auto& w : words)
        if (std::find(t.m_words.begin(), t.m_words.end(), w) == t.m_words.end()) t.m_words.push_back(w);
    t.m_words.push_back("<start>");
    t.m_words.push_back("<end>");
    for (std::size_t i = 0; i < t.m_words.size(); ++i) t.m_sorted.emplace_back(t.m_words[i], static_cast<int64_t>(i));
    std::sort(t.m_sorted.begin(), t.m_sorted.end());
    return t;
}

WordTokenizer WordTokenizer::fromFile(const std::string& path) {
    std::istringstream in(readFileText(path));
    std::vector<std::string> lines;
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        lines.push_back(line);
    }
    if (lines.size() < 4 || lines.front() != "<pad>" || lines[lines.size() - 2] != "<start>" || lines.back() != "<end>")
        throw FormatError(path, "word vocabulary must start with <pad> and end with <start>, <end>");
    WordTokenizer t = fromWords(std::vector<std::string>(lines.begin() + 1, lines.end() - 2));
    if (t.m_words.size() != lines.size()) throw FormatError(path, "word vocabulary holds duplicate words");
    return t;
}

int64_t WordTokenizer::find(const std::string& word) const {
    auto it = std::lower_bound(m_sorted.begin(), m_sorted.end(), std::make_pair(word, int64_t(-1)));
    return it != m_sorted.end() && it->first == word ? it->second : -1;
}

std::vector<int64_t> WordTokenizer::tokenize(const std::string& text, int context) const {
    if (context < 2) throw InputError("tokenize", "context length must be at least 2");
    std::vector<int64_t> ids{static_cast<int64_t>(m_words.size()) - 2};
    for (const std::string& w : splitWordsSimple(text)) {
        const int64_t id = find(w);
        if (id <= 0 || id >= static_cast<int64_t>(m_words.size()) - 2)
            throw InputError(text, "word '" + w + "' is not in the model's vocabulary");
        ids.push_back(id);
    }
    ids.push_back(static_cast<int64_t>(m_words.size()) - 1);
    if (ids.size() > static_cast<std::size_t>(context)) {
        ids.resize(static_cast<std::size_t>(context));
        ids.back() = static_cast<int64_t>(m_words.size()) - 1;
    }
    ids.resize(static_cast<std::size_t>(context), 0);
    return ids;
}

void WordTokenizer::save(const std::string& path) const {
    std::string text;
    for (const auto& w : m_words) text += w + "\n";
    writeFileAtomic(path, text);
}

std::unique_ptr<TextTokenizer> loadTokenizer(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::is_directory(path, ec) && fs::is_regular_file(fs::path(path) / "vocab.txt", ec))
        return std::make_unique<WordTokenizer>(WordTokenizer::fromFile((fs::path(path) / "vocab.txt").string()));
    if (fs::path(path).filename() == "vocab.txt") return std::make_unique<WordTokenizer>(WordTokenizer::fromFile(path));
    if (fs::is_directory(path, ec) && fs::is_regular_file(fs::path(path) / "spiece.model", ec))
        return std::make_unique<SentencePieceTokenizer>(SentencePieceTokenizer::fromFile((fs::path(path) / "spiece.model").string()));
    if (fs::path(path).extension() == ".model")
        return std::make_unique<SentencePieceTokenizer>(SentencePieceTokenizer::fromFile(path));
    return std::make_unique<BpeAdapter>(ClipTokenizer::fromPath(path));
}

}  // namespace vitscope
