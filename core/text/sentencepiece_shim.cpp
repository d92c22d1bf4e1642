// A C interface to Debian's libsentencepiece, built as a module that
// text/sentencepiece_tokenizer.cpp opens with dlopen(RTLD_LOCAL | RTLD_DEEPBIND).
//
// Why a module: libsentencepiece.so.0 exports the protobuf-lite 3.14 it bundles, and LibTorch
// loads libprotobuf.so.32 (3.21). Linked into one program, one library's protobuf calls bind to
// the other's copy: a crash in static initialisation, or "compiled against version 3.14.0 of the
// Protocol Buffer runtime library" and an abort. Opened locally with deep binding, sentencepiece
// keeps its own protobuf and the program keeps LibTorch's. Only plain C types cross this line.
#include <sentencepiece_processor.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

namespace {

void copyError(const std::string& message, char* error, std::size_t capacity) {
    if (!error || capacity == 0) return;
    const std::size_t n = std::min(message.size(), capacity - 1);
    std::memcpy(error, message.data(), n);
    error[n] = '\0';
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) void* vitscope_spm_open(const char* bytes, std::size_t size, char* error,
                                                              std::size_t errorCapacity) {
    try {
        auto* sp = new sentencepiece::SentencePieceProcessor();
        const auto status = sp->LoadFromSerializedProto(std::string(bytes, size));
        if (!status.ok()) {
            copyError(status.ToString(), error, errorCapacity);
            delete sp;
            return nullptr;
        }
        return sp;
    } catch (const std::exception& e) {
        copyError(e.what(), error, errorCapacity);
    } catch (...) {
        copyError("unknown error", error, errorCapacity);
    }
    return nullptr;
}

__attribute__((visibility("default"))) void vitscope_spm_close(void* handle) {
    delete static_cast<sentencepiece::SentencePieceProcessor*>(handle);
}

__attribute__((visibility("default"))) int vitscope_spm_pieces(void* handle) {
    return static_cast<sentencepiece::SentencePieceProcessor*>(handle)->GetPieceSize();
}

// The end-of-sequence id (the model's eos_id, else the piece "</s>"), or -1.
__attribute__((visibility("default"))) int vitscope_spm_end(void* handle) {
    auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(handle);
    int id = sp->eos_id();
    if (id < 0) id = sp->PieceToId("</s>");
    if (id < 0 || id >= sp->GetPieceSize() || sp->IsUnknown(id)) return -1;
    return id;
}

// Writes up to `capacity` ids; returns how many the text has (may exceed capacity), or -1 with
// the error message written.
__attribute__((visibility("default"))) long vitscope_spm_encode(void* handle, const char* text, std::size_t size, int* out,
                                                              std::size_t capacity, char* error, std::size_t errorCapacity) {
    try {
        std::vector<int> ids;
        const auto status = static_cast<sentencepiece::SentencePieceProcessor*>(handle)->Encode(std::string(text, size), &ids);
        if (!status.ok()) {
            copyError(status.ToString(), error, errorCapacity);
            return -1;
        }
        std::copy_n(ids.begin(), std::min(ids.size(), capacity), out);
        return static_cast<long>(ids.size());
    } catch (const std::exception& e) {
        copyError(e.what(), error, errorCapacity);
    }
    return -1;
}

}  // extern "C"
