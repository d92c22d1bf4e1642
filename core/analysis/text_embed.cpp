#include "analysis/text_embed.h"

#include "error.h"
#include "text/text_tokenizer.h"
#include "resources.h"
#include "io/file_util.h"
#include "model/forward.h"

#include <algorithm>
#include <filesystem>

namespace vitscope {

std::vector<std::string> readTextList(const std::string& path) {
    const std::string text = readFileText(path);
    if (text.find('\0') != std::string::npos) throw FormatError(path, "not a text file (holds NUL bytes)");
    std::vector<std::string> out;
    for (std::string line : splitLines(text)) {
        const std::size_t a = line.find_first_not_of(" \t\r");
        const std::size_t b = line.find_last_not_of(" \t\r");
        line = a == std::string::npos ? "" : line.substr(a, b - a + 1);
        if (!line.empty() && line[0] != '#') out.push_back(line);
    }
    if (out.empty()) throw InputError(path, "holds no texts (one text per line; '#' starts a comment)");
    return out;
}

std::vector<std::string> classNamesFromFolders(const std::string& dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) throw IoError(dir, "not a folder");
    std::vector<std::string> names;
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
        if (it->is_directory(ec)) names.push_back(it->path().filename().string());
    if (ec) throw IoError(dir, "cannot list: " + ec.message());
    if (names.empty()) throw InputError(dir, "has no class subfolders");
    std::sort(names.begin(), names.end());
    for (std::string& n : names) std::replace_if(n.begin(), n.end(), [](char c) { return c == '_' || c == '-'; }, ' ');
    return names;
}

TextEncoder::TextEncoder(const Model& clip) : m_model(clip) {
    if (!clip.isClip()) throw InputError(clip.info.weightsPath, "has no text tower; pass a CLIP model (--clip) and an aligner");
    if (clip.tokenizerPath.empty()) throw InputError(clip.info.weightsPath, "no tokenizer found beside the model; pass --tokenizer");
    m_tokenizer = loadTokenizer(clip.tokenizerPath);
}

at::Tensor TextEncoder::encode(const std::vector<std::string>& texts, int batch) const {
    if (texts.empty()) throw InputError("texts", "no texts to embed");
    at::NoGradGuard noGrad;
    const int context = m_model.text->contextLength;
    std::vector<at::Tensor> out;
    for (std::size_t start = 0; start < texts.size(); start += static_cast<std::size_t>(batch)) {
        const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(batch), texts.size() - start);
        at::Tensor ids = at::zeros({static_cast<int64_t>(n), context}, at::kLong);
        for (std::size_t i = 0; i < n; ++i) {
            const std::vector<int64_t> t = m_tokenizer->tokenize(texts[start + i], context);
            std::copy(t.begin(), t.end(), ids[static_cast<int64_t>(i)].data_ptr<int64_t>());
        }
        const at::Tensor e = encodeTexts(m_model, ids.to(m_model.text->tokenEmbedding.device())).to(at::kCPU, at::kFloat);
        out.push_back(e / e.norm(2, 1, true).clamp_min(1e-12));
    }
    return at::cat(out);
}

bool TextEncoder::wordVocabulary() const { return dynamic_cast<const WordTokenizer*>(m_tokenizer.get()) != nullptr; }

std::vector<std::string> TextEncoder::vocabulary() const {
    const auto* words = dynamic_cast<const WordTokenizer*>(m_tokenizer.get());
    return words ? words->knownWords() : std::vector<std::string>{};
}

at::Tensor TextEncoder::encodeDescriptions(const std::vector<std::string>& texts) const {
    if (wordVocabulary()) return encode(texts);
    const std::string file = dataFile("resources/templates/classes.txt");
    if (file.empty()) throw IoError("resources/templates/classes.txt", "not found (set VITSCOPE_DATA_DIR)");
    static const std::vector<std::string> kTemplates = readTextList(file);  // read once (ranked per property)
    return encodeEnsemble(texts, kTemplates);
}

at::Tensor TextEncoder::encodeEnsemble(const std::vector<std::string>& classNames, const std::vector<std::string>& templates) const {
    if (templates.empty()) return encode(classNames);
    std::vector<at::Tensor> rows;
    for (const std::string& name : classNames) {
        std::vector<std::string> filled;
        for (const std::string& t : templates) {
            std::string s = t;
            const std::size_t pos = s.find("{}");
            if (pos == std::string::npos) throw InputError("template '" + t + "'", "has no {} for the class name");
            s.replace(pos, 2, name);
            filled.push_back(s);
        }
        const at::Tensor mean = encode(filled).mean(0);
        rows.push_back(mean / mean.norm().clamp_min(1e-12));
    }
    return at::stack(rows);
}

}  // namespace vitscope
