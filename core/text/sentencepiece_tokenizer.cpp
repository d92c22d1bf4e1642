#include "text/sentencepiece_tokenizer.h"

#include "error.h"
#include "io/file_util.h"
#include "text/tokenizer.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cctype>
#include <cstring>
#include <filesystem>
#include <mutex>

#ifndef VITSCOPE_SPM_INSTALL_DIR
#define VITSCOPE_SPM_INSTALL_DIR ""
#endif
#ifndef VITSCOPE_SPM_RELATIVE_DIR
#define VITSCOPE_SPM_RELATIVE_DIR "lib/vitscope"
#endif

namespace vitscope {

namespace {

constexpr const char* kShimName = "libvitscope-sentencepiece.so";

// The entry points of the shim module (text/sentencepiece_shim.cpp).
struct Shim {
    void* (*open)(const char*, std::size_t, char*, std::size_t) = nullptr;
    void (*close)(void*) = nullptr;
    int (*pieces)(void*) = nullptr;
    int (*end)(void*) = nullptr;
    long (*encode)(void*, const char*, std::size_t, int*, std::size_t, char*, std::size_t) = nullptr;
    std::string error;  // why it could not be opened
};

std::filesystem::path executableDir() {
    std::error_code ec;
    const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    return ec ? std::filesystem::path() : exe.parent_path();
}

const Shim& shim() {
    static Shim s;
    static std::once_flag once;
    std::call_once(once, [] {
        std::vector<std::filesystem::path> candidates;
        if (const char* env = std::getenv("VITSCOPE_SENTENCEPIECE_SHIM")) candidates.emplace_back(env);
        const auto dir = executableDir();
        if (!dir.empty()) {
            candidates.push_back(dir / kShimName);  // the build tree
            // Installed under any prefix (a package's /usr, the default /usr/local): PREFIX/bin -> PREFIX/LIBDIR/vitscope.
            candidates.push_back(dir / ".." / VITSCOPE_SPM_RELATIVE_DIR / kShimName);
        }
        if (std::strlen(VITSCOPE_SPM_INSTALL_DIR) > 0) candidates.push_back(std::filesystem::path(VITSCOPE_SPM_INSTALL_DIR) / kShimName);
        std::string looked;
        for (const auto& c : candidates) {
            looked += (looked.empty() ? "" : ", ") + c.string();
            std::error_code ec;
            if (!std::filesystem::is_regular_file(c, ec)) continue;
            // Local and deep-bound: sentencepiece keeps the protobuf it bundles (see the shim).
            void* h = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
            if (!h) {
                const char* why = dlerror();
                looked += std::string(" (") + (why ? why : "dlopen failed") + ")";
                continue;
            }
            s.open = reinterpret_cast<decltype(s.open)>(dlsym(h, "vitscope_spm_open"));
            s.close = reinterpret_cast<decltype(s.close)>(dlsym(h, "vitscope_spm_close"));
            s.pieces = reinterpret_cast<decltype(s.pieces)>(dlsym(h, "vitscope_spm_pieces"));
            s.end = reinterpret_cast<decltype(s.end)>(dlsym(h, "vitscope_spm_end"));
            s.encode = reinterpret_cast<decltype(s.encode)>(dlsym(h, "vitscope_spm_encode"));
            if (s.open && s.close && s.pieces && s.end && s.encode) return;
            s = Shim();
            looked += " (missing entry points)";
        }
        s.error = "SentencePiece support module " + std::string(kShimName) + " not found (looked in " + looked + ")";
    });
    return s;
}

}  // namespace

std::string siglipCleanText(const std::string& text) {
    static const char* kPunctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";  // Python's string.punctuation
    const std::string lower = unicodeLower(text);
    std::string out;
    bool pendingSpace = false;
    for (char c : lower) {
        if (c != '\0' && std::strchr(kPunctuation, c)) continue;
        if (std::isspace(static_cast<unsigned char>(c))) {
            pendingSpace = !out.empty();
            continue;
        }
        if (pendingSpace) out.push_back(' ');
        pendingSpace = false;
        out.push_back(c);
    }
    return out;
}

SentencePieceTokenizer SentencePieceTokenizer::fromFile(const std::string& path) {
    const std::string bytes = readFileText(path);
    const Shim& s = shim();
    if (!s.open) throw IoError(path, s.error);
    char error[512] = {0};
    void* handle = s.open(bytes.data(), bytes.size(), error, sizeof error);
    if (!handle) throw FormatError(path, std::string("not a SentencePiece model (") + error + ")");
    SentencePieceTokenizer t;
    t.m_handle = std::shared_ptr<void>(handle, s.close);
    t.m_pieces = s.pieces(handle);
    if (t.m_pieces <= 0) throw FormatError(path, "SentencePiece model has no pieces");
    const int end = s.end(handle);
    if (end < 0) throw FormatError(path, "SentencePiece model has no end-of-sequence piece (</s>)");
    t.m_end = end;
    t.m_pad = end;  // SigLIP pads with "</s>"
    return t;
}

std::vector<int64_t> SentencePieceTokenizer::encode(const std::string& text) const {
    const std::string clean = siglipCleanText(text);
    std::vector<int> ids(clean.size() + 8);
    char error[512] = {0};
    long n = shim().encode(m_handle.get(), clean.data(), clean.size(), ids.data(), ids.size(), error, sizeof error);
    if (n > static_cast<long>(ids.size())) {  // more pieces than bytes (byte fallback): ask again with room for all
        ids.resize(static_cast<std::size_t>(n));
        n = shim().encode(m_handle.get(), clean.data(), clean.size(), ids.data(), ids.size(), error, sizeof error);
    }
    if (n < 0 || n > static_cast<long>(ids.size()))
        throw InputError("text", std::string("SentencePiece could not encode it (") + error + ")");
    ids.resize(static_cast<std::size_t>(n));
    return {ids.begin(), ids.end()};
}

std::vector<int64_t> SentencePieceTokenizer::tokenize(const std::string& text, int context) const {
    if (context < 1) throw InputError("context", "must hold at least the end token");
    std::vector<int64_t> ids = encode(text);
    if (static_cast<int>(ids.size()) > context - 1) ids.resize(static_cast<std::size_t>(context - 1));
    ids.push_back(m_end);
    ids.resize(static_cast<std::size_t>(context), m_pad);
    return ids;
}

}  // namespace vitscope
