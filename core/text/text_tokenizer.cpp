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

std::vector<std::string> WordTokenizer::knownWords() const {
    return m_words.size() > 3 ? std::vector<std::string>(m_words.begin() + 1, m_words.end() - 2) : std::vector<std::string>{};
}

namespace {

// Edit distance with adjacent transpositions ("dgo" -> "dog" is one edit).
std::size_t editDistance(const std::string& a, const std::string& b) {
    std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
    for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i)
        for (std::size_t j = 1; j <= b.size(); ++j) {
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    return d[a.size()][b.size()];
}

}  // namespace

std::vector<std::string> WordTokenizer::closest(const std::string& word, std::size_t count) const {
    std::vector<std::pair<std::size_t, std::string>> ranked;
    for (const std::string& w : knownWords()) {
        const std::size_t d = editDistance(word, w);
        std::size_t prefix = 0;
        while (prefix < word.size() && prefix < w.size() && word[prefix] == w[prefix]) ++prefix;
        const std::size_t allowed = word.size() <= 3 ? 1 : 2;  // two edits make any short word "close"
        if (d <= allowed || prefix >= 2) ranked.emplace_back(d * 100 + (100 - std::min<std::size_t>(prefix, 99)), w);
    }
    std::sort(ranked.begin(), ranked.end());
    std::vector<std::string> out;
    for (std::size_t i = 0; i < ranked.size() && i < count; ++i) out.push_back(ranked[i].second);
    return out;
}

std::vector<int64_t> WordTokenizer::tokenize(const std::string& text, int context) const {
    if (context < 2) throw InputError("tokenize", "context length must be at least 2");
    std::vector<int64_t> ids{static_cast<int64_t>(m_words.size()) - 2};
    for (const std::string& w : splitWordsSimple(text)) {
        const int64_t id = find(w);
        if (id <= 0 || id >= static_cast<int64_t>(m_words.size()) - 2) {
            // Say what the model knows: the closest words, else the size of the vocabulary.
            // Say what the model knows: the closest words, or every word of a small vocabulary.
            const std::vector<std::string> near = closest(w, 5);
            const std::vector<std::string> all = knownWords();
            const bool listAll = near.empty() && all.size() <= 60;
            std::string hint;
            for (const std::string& n : listAll ? all : near) hint += (hint.empty() ? "" : " ") + n;
            throw InputError(text, "word '" + w + "' is not in the model's vocabulary of " + std::to_string(all.size()) + " words" +
                                       (hint.empty() ? std::string() : (listAll ? " (it knows: " : " (closest: ") + hint + ")"));
        }
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
