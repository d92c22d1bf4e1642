#include "text/tokenizer.h"

#include "error.h"
#include "io/file_util.h"

#include <nlohmann/json.hpp>
#include <unicode/uchar.h>
#include <unicode/ustring.h>
#include <zlib.h>

#include <algorithm>
#include <climits>
#include <filesystem>
#include <sstream>

namespace vitscope {

namespace {

constexpr std::size_t kMaxCache = 20000;
constexpr int kClipMerges = 49152 - 256 - 2;

void appendUtf8(std::string& out, char32_t c) {
    if (c < 0x80) {
        out.push_back(static_cast<char>(c));
    } else if (c < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (c >> 6)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (c >> 12)));
        out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (c >> 18)));
        out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
}

// Lenient UTF-8 decoding: invalid sequences become U+FFFD, as Python's errors="replace" does.
std::u32string decodeUtf8(const std::string& s) {
    std::u32string out;
    std::size_t i = 0;
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    while (i < s.size()) {
        const unsigned char c = p[i];
        int len = 0;
        char32_t cp = 0;
        if (c < 0x80) { len = 1; cp = c; }
        else if ((c >> 5) == 0x6) { len = 2; cp = c & 0x1F; }
        else if ((c >> 4) == 0xE) { len = 3; cp = c & 0x0F; }
        else if ((c >> 3) == 0x1E) { len = 4; cp = c & 0x07; }
        bool ok = len > 0 && i + len <= s.size();
        for (int k = 1; ok && k < len; ++k) {
            if ((p[i + k] & 0xC0) != 0x80) ok = false;
            else cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if (ok && ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
                   (cp >= 0xD800 && cp <= 0xDFFF)))
            ok = false;
        if (!ok) {
            out.push_back(0xFFFD);
            ++i;
            continue;
        }
        out.push_back(cp);
        i += len;
    }
    return out;
}

std::string encodeUtf8(const std::u32string& s) {
    std::string out;
    for (char32_t c : s) appendUtf8(out, c);
    return out;
}

// Python's str.isspace() / re's \s on str.
bool isSpace(char32_t c) {
    if ((c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0) return true;
    return c > 0x7F && u_isUWhiteSpace(static_cast<UChar32>(c));
}
bool isLetter(char32_t c) { return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_L_MASK) != 0; }
bool isNumber(char32_t c) { return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_N_MASK) != 0; }

std::u32string lowercase(const std::u32string& s) {
    // Full Unicode lowercasing (root locale), as Python's str.lower() does.
    std::string utf8 = encodeUtf8(s);
    UErrorCode err = U_ZERO_ERROR;
    int32_t len16 = 0;
    u_strFromUTF8(nullptr, 0, &len16, utf8.data(), static_cast<int32_t>(utf8.size()), &err);
    err = U_ZERO_ERROR;
    std::u16string u16(static_cast<std::size_t>(len16), u'\0');
    u_strFromUTF8(reinterpret_cast<UChar*>(u16.data()), len16, nullptr, utf8.data(), static_cast<int32_t>(utf8.size()), &err);
    if (U_FAILURE(err)) return s;
    err = U_ZERO_ERROR;
    const int32_t lowLen = u_strToLower(nullptr, 0, reinterpret_cast<const UChar*>(u16.data()), len16, "", &err);
    err = U_ZERO_ERROR;
    std::u16string low(static_cast<std::size_t>(lowLen), u'\0');
    u_strToLower(reinterpret_cast<UChar*>(low.data()), lowLen, reinterpret_cast<const UChar*>(u16.data()), len16, "", &err);
    if (U_FAILURE(err)) return s;
    std::u32string out;
    for (int32_t i = 0; i < lowLen;) {
        UChar32 c;
        U16_NEXT(low.data(), i, lowLen, c);
        out.push_back(static_cast<char32_t>(c));
    }
    return out;
}

// html.unescape for numeric references and the named entities that occur in captions.
std::u32string htmlUnescape(const std::u32string& s) {
    static const std::pair<const char*, char32_t> kNamed[] = {
        {"amp", '&'},      {"lt", '<'},       {"gt", '>'},       {"quot", '"'},     {"apos", '\''},   {"nbsp", 0xA0},
        {"copy", 0xA9},    {"reg", 0xAE},     {"trade", 0x2122}, {"hellip", 0x2026}, {"mdash", 0x2014}, {"ndash", 0x2013},
        {"lsquo", 0x2018}, {"rsquo", 0x2019}, {"ldquo", 0x201C}, {"rdquo", 0x201D}, {"deg", 0xB0},    {"times", 0xD7},
        {"eacute", 0xE9},  {"egrave", 0xE8},  {"aacute", 0xE1},  {"uuml", 0xFC},    {"ouml", 0xF6},   {"auml", 0xE4},
        {"szlig", 0xDF},   {"euro", 0x20AC},  {"pound", 0xA3},   {"yen", 0xA5},     {"cent", 0xA2},   {"middot", 0xB7}};
    std::u32string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '&') {
            out.push_back(s[i]);
            continue;
        }
        const std::size_t semi = s.find(U';', i + 1);
        if (semi == std::u32string::npos || semi - i > 12) {
            out.push_back(s[i]);
            continue;
        }
        const std::string body = encodeUtf8(s.substr(i + 1, semi - i - 1));
        char32_t value = 0;
        if (body.size() > 1 && body[0] == '#') {
            const bool hex = body[1] == 'x' || body[1] == 'X';
            const std::string digits = body.substr(hex ? 2 : 1);
            const bool valid = !digits.empty() && std::all_of(digits.begin(), digits.end(), [&](char c) {
                return hex ? std::isxdigit(static_cast<unsigned char>(c)) : std::isdigit(static_cast<unsigned char>(c));
            });
            if (valid && digits.size() <= 8) {
                const unsigned long v = std::stoul(digits, nullptr, hex ? 16 : 10);
                value = (v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) ? 0xFFFD : static_cast<char32_t>(v);
            }
        } else {
            for (const auto& [name, cp] : kNamed)
                if (body == name) value = cp;
        }
        if (value == 0) {
            out.push_back(s[i]);
            continue;
        }
        out.push_back(value);
        i = semi;
    }
    return out;
}

std::u32string cleanCodepoints(const std::string& text) {
    std::u32string s = htmlUnescape(htmlUnescape(decodeUtf8(text)));
    std::u32string out;
    bool pendingSpace = false;
    for (char32_t c : s) {
        if (isSpace(c)) {
            pendingSpace = !out.empty();
            continue;
        }
        if (pendingSpace) out.push_back(' ');
        pendingSpace = false;
        out.push_back(c);
    }
    return lowercase(out);
}

bool startsWith(const std::u32string& s, std::size_t pos, const char* lit) {
    for (std::size_t k = 0; lit[k]; ++k)
        if (pos + k >= s.size() || s[pos + k] != static_cast<unsigned char>(lit[k])) return false;
    return true;
}

// CLIP's split: <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
std::vector<std::u32string> splitWords(const std::u32string& s) {
    static const char* kFixed[] = {"<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    std::vector<std::u32string> words;
    std::size_t i = 0;
    while (i < s.size()) {
        bool matched = false;
        for (const char* lit : kFixed) {
            if (startsWith(s, i, lit)) {
                const std::size_t n = std::char_traits<char>::length(lit);
                words.push_back(s.substr(i, n));
                i += n;
                matched = true;
                break;
            }
        }
        if (matched) continue;
        const char32_t c = s[i];
        std::size_t j = i + 1;
        if (isLetter(c)) {
            while (j < s.size() && isLetter(s[j])) ++j;
        } else if (isNumber(c)) {
            // one digit per word
        } else if (isSpace(c)) {
            ++i;
            continue;
        } else {
            while (j < s.size() && !isSpace(s[j]) && !isLetter(s[j]) && !isNumber(s[j])) ++j;
        }
        words.push_back(s.substr(i, j - i));
        i = j;
    }
    return words;
}

// CLIP's reversible byte -> printable code point table.
const std::vector<std::string>& byteEncoder() {
    static const std::vector<std::string> table = [] {
        std::vector<int> bs;
        for (int b = '!'; b <= '~'; ++b) bs.push_back(b);
        for (int b = 0xA1; b <= 0xAC; ++b) bs.push_back(b);
        for (int b = 0xAE; b <= 0xFF; ++b) bs.push_back(b);
        std::vector<char32_t> cs(256);
        std::vector<bool> seen(256, false);
        for (int b : bs) {
            cs[b] = static_cast<char32_t>(b);
            seen[b] = true;
        }
        int n = 0;
        for (int b = 0; b < 256; ++b)
            if (!seen[b]) cs[b] = static_cast<char32_t>(256 + n++);
        std::vector<std::string> out(256);
        for (int b = 0; b < 256; ++b) appendUtf8(out[b], cs[b]);
        return out;
    }();
    return table;
}

// The vocabulary order of CLIP's merges file: byte symbols in table order, the same with
// '</w>', then every merge, then the two special tokens.
std::vector<std::string> byteSymbolsInOrder() {
    std::vector<int> bs;
    for (int b = '!'; b <= '~'; ++b) bs.push_back(b);
    for (int b = 0xA1; b <= 0xAC; ++b) bs.push_back(b);
    for (int b = 0xAE; b <= 0xFF; ++b) bs.push_back(b);
    std::vector<bool> seen(256, false);
    for (int b : bs) seen[b] = true;
    for (int b = 0; b < 256; ++b)
        if (!seen[b]) bs.push_back(b);
    std::vector<std::string> out;
    for (int b : bs) out.push_back(byteEncoder()[b]);
    return out;
}

// CLIP's merges file always starts with a header line; merges.txt may start with "#version".
std::vector<std::pair<std::string, std::string>> parseMerges(const std::string& text, const std::string& where,
                                                             std::size_t limit, bool alwaysSkipFirst) {
    std::vector<std::pair<std::string, std::string>> merges;
    std::istringstream in(text);
    std::string line;
    bool first = true;
    while (std::getline(in, line) && merges.size() < limit) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (first) {
            first = false;
            if (alwaysSkipFirst || line.rfind("#version", 0) == 0) continue;
        }
        if (line.empty()) continue;
        const auto sp = line.find(' ');
        if (sp == std::string::npos || sp == 0 || sp + 1 >= line.size() || line.find(' ', sp + 1) != std::string::npos)
            throw FormatError(where, "merges line " + std::to_string(merges.size() + 2) + " is not 'a b'");
        merges.emplace_back(line.substr(0, sp), line.substr(sp + 1));
    }
    if (merges.empty()) throw FormatError(where, "no BPE merges found");
    return merges;
}

std::string gunzip(const std::string& path) {
    gzFile f = gzopen(path.c_str(), "rb");
    if (!f) throw IoError(path, "cannot open");
    std::string out;
    char buf[65536];
    int n = 0;
    while ((n = gzread(f, buf, sizeof(buf))) > 0) {
        out.append(buf, static_cast<std::size_t>(n));
        if (out.size() > (256u << 20)) {
            gzclose(f);
            throw FormatError(path, "decompressed merges exceed 256 MB");
        }
    }
    int err = 0;
    const char* msg = gzerror(f, &err);
    const bool bad = n < 0 || (err != Z_OK && err != Z_STREAM_END);
    const std::string message = msg ? msg : "";
    gzclose(f);
    if (bad) throw FormatError(path, "corrupt gzip data: " + message);
    return out;
}

bool endsWith(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::string clipCleanText(const std::string& text) { return encodeUtf8(cleanCodepoints(text)); }

std::string unicodeLower(const std::string& utf8) { return encodeUtf8(lowercase(decodeUtf8(utf8))); }

ClipTokenizer ClipTokenizer::fromMergesText(const std::string& text, const std::string& where) {
    ClipTokenizer tok;
    const auto merges = parseMerges(text, where, kClipMerges, true);
    std::vector<std::string> vocab = byteSymbolsInOrder();
    const std::size_t base = vocab.size();
    for (std::size_t i = 0; i < base; ++i) vocab.push_back(vocab[i] + "</w>");
    for (std::size_t i = 0; i < merges.size(); ++i) {
        vocab.push_back(merges[i].first + merges[i].second);
        tok.m_ranks[merges[i].first + " " + merges[i].second] = static_cast<int>(i);
    }
    vocab.push_back("<|startoftext|>");
    vocab.push_back("<|endoftext|>");
    for (std::size_t i = 0; i < vocab.size(); ++i) tok.m_encoder[vocab[i]] = static_cast<int64_t>(i);
    tok.m_decoder = vocab;
    tok.m_start = tok.m_encoder.at("<|startoftext|>");
    tok.m_end = tok.m_encoder.at("<|endoftext|>");
    return tok;
}

ClipTokenizer ClipTokenizer::fromVocabAndMerges(const std::string& vocabJson, const std::string& mergesText,
                                                const std::string& where) {
    ClipTokenizer tok;
    const nlohmann::json vocab = nlohmann::json::parse(vocabJson, nullptr, false);
    if (vocab.is_discarded() || !vocab.is_object()) throw FormatError(where, "vocab.json is not a JSON object");
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
        if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > INT_MAX)
            throw FormatError(where, "vocab.json id for '" + it.key() + "' is not a non-negative integer");
        tok.m_encoder[it.key()] = it->get<int64_t>();
    }
    tok.m_decoder.assign(tok.m_encoder.size(), std::string());
    for (const auto& [token, id] : tok.m_encoder) {
        if (static_cast<std::size_t>(id) >= tok.m_decoder.size())
            throw FormatError(where, "vocab.json ids are not contiguous from 0");
        tok.m_decoder[static_cast<std::size_t>(id)] = token;
    }
    const auto merges = parseMerges(mergesText, where, static_cast<std::size_t>(INT_MAX), false);
    for (std::size_t i = 0; i < merges.size(); ++i) tok.m_ranks[merges[i].first + " " + merges[i].second] = static_cast<int>(i);
    for (const char* special : {"<|startoftext|>", "<|endoftext|>"})
        if (!tok.m_encoder.count(special)) throw FormatError(where, std::string("vocab.json lacks ") + special);
    tok.m_start = tok.m_encoder.at("<|startoftext|>");
    tok.m_end = tok.m_encoder.at("<|endoftext|>");
    return tok;
}

ClipTokenizer ClipTokenizer::fromPath(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
        const fs::path dir(path);
        if (fs::is_regular_file(dir / "vocab.json", ec) && fs::is_regular_file(dir / "merges.txt", ec))
            return fromVocabAndMerges(readFileText((dir / "vocab.json").string()), readFileText((dir / "merges.txt").string()),
                                      path);
        if (fs::is_regular_file(dir / "bpe_simple_vocab_16e6.txt.gz", ec))
            return fromPath((dir / "bpe_simple_vocab_16e6.txt.gz").string());
        throw IoError(path, "directory holds neither vocab.json + merges.txt nor a BPE merges .gz");
    }
    if (endsWith(path, ".gz")) return fromMergesText(gunzip(path), path);
    return fromMergesText(readFileText(path), path);
}

std::vector<int64_t> ClipTokenizer::bpe(const std::string& token) const {
    auto cached = m_cache.find(token);
    if (cached != m_cache.end()) return cached->second;
    // Split into code points (each a byte symbol), the last one carrying '</w>'.
    std::vector<std::string> word;
    const std::u32string cps = decodeUtf8(token);
    for (char32_t c : cps) {
        std::string sym;
        appendUtf8(sym, c);
        word.push_back(sym);
    }
    if (word.empty()) return {};
    word.back() += "</w>";
    while (word.size() > 1) {
        int bestRank = INT_MAX;
        std::size_t bestAt = 0;
        for (std::size_t i = 0; i + 1 < word.size(); ++i) {
            auto it = m_ranks.find(word[i] + " " + word[i + 1]);
            if (it != m_ranks.end() && it->second < bestRank) {
                bestRank = it->second;
                bestAt = i;
            }
        }
        if (bestRank == INT_MAX) break;
        // Merge every occurrence of the best pair, left to right.
        const std::string first = word[bestAt], second = word[bestAt + 1];
        std::vector<std::string> merged;
        for (std::size_t i = 0; i < word.size();) {
            if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
                merged.push_back(first + second);
                i += 2;
            } else {
                merged.push_back(word[i]);
                ++i;
            }
        }
        word.swap(merged);
    }
    std::vector<int64_t> ids;
    for (const std::string& sym : word) {
        auto it = m_encoder.find(sym);
        if (it == m_encoder.end()) throw FormatError("tokenizer", "BPE symbol missing from the vocabulary (merges and vocab disagree)");
        ids.push_back(it->second);
    }
    if (m_cache.size() > kMaxCache) m_cache.clear();
    m_cache.emplace(token, ids);
    return ids;
}

std::vector<int64_t> ClipTokenizer::encode(const std::string& text) const {
    std::vector<int64_t> ids;
    for (const std::u32string& word : splitWords(cleanCodepoints(text))) {
        const std::string utf8 = encodeUtf8(word);
        if (utf8 == "<|startoftext|>" || utf8 == "<|endoftext|>") {
            ids.push_back(utf8 == "<|startoftext|>" ? m_start : m_end);
            continue;
        }
        std::string mapped;
        for (unsigned char b : utf8) mapped += byteEncoder()[b];
        const std::vector<int64_t> part = bpe(mapped);
        ids.insert(ids.end(), part.begin(), part.end());
    }
    return ids;
}

std::vector<int64_t> ClipTokenizer::tokenize(const std::string& text, int context) const {
    if (context < 2) throw InputError("tokenize", "context length must be at least 2");
    std::vector<int64_t> ids{m_start};
    const std::vector<int64_t> body = encode(text);
    ids.insert(ids.end(), body.begin(), body.end());
    ids.push_back(m_end);
    if (ids.size() > static_cast<std::size_t>(context)) {
        ids.resize(static_cast<std::size_t>(context));
        ids.back() = m_end;
    }
    ids.resize(static_cast<std::size_t>(context), 0);
    return ids;
}

std::string ClipTokenizer::decode(const std::vector<int64_t>& ids) const {
    std::string symbols;
    for (int64_t id : ids) {
        if (id < 0 || static_cast<std::size_t>(id) >= m_decoder.size()) continue;
        symbols += m_decoder[static_cast<std::size_t>(id)];
    }
    // Map byte symbols back to bytes; '</w>' marks a word end.
    std::string out;
    const std::u32string cps = decodeUtf8(symbols);
    std::unordered_map<char32_t, unsigned char> reverse;
    for (int b = 0; b < 256; ++b) reverse[decodeUtf8(byteEncoder()[b])[0]] = static_cast<unsigned char>(b);
    for (std::size_t i = 0; i < cps.size(); ++i) {
        if (startsWith(cps, i, "</w>")) {
            out.push_back(' ');
            i += 3;
            continue;
        }
        auto it = reverse.find(cps[i]);
        if (it != reverse.end()) out.push_back(static_cast<char>(it->second));
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

}  // namespace vitscope
