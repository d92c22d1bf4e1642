#pragma once
// SigLIP's tokenizer: a SentencePiece model (spiece.model) behind the text cleaning of the
// Hugging Face SiglipTokenizer / open_clip's "canonicalize" cleaner. Torch-free.
//
//   text -> Unicode lowercase -> ASCII punctuation removed -> whitespace runs collapsed, trimmed
//        -> SentencePiece ids (the model's own normaliser and word-start marker)
//        -> at most context - 1 ids, then the end-of-sequence id, then padded to the context
//           with the pad id (SigLIP pads with "</s>", the end id).
//
// Debian's libsentencepiece is reached through a small module (libvitscope-sentencepiece.so,
// text/sentencepiece_shim.cpp) opened with dlopen: it bundles a protobuf that clashes with
// LibTorch's when both are linked into one program.
#include "text/text_tokenizer.h"

#include <memory>
#include <string>
#include <vector>

namespace vitscope {

class SentencePieceTokenizer : public TextTokenizer {
public:
    // Throws IoError / FormatError naming the file when it is missing or not a SentencePiece model.
    static SentencePieceTokenizer fromFile(const std::string& path);

    std::vector<int64_t> encode(const std::string& text) const;  // cleaned text -> ids, no end id
    std::vector<int64_t> tokenize(const std::string& text, int context) const override;
    std::size_t vocabSize() const override { return static_cast<std::size_t>(m_pieces); }
    int64_t endToken() const { return m_end; }
    int64_t padToken() const { return m_pad; }

private:
    SentencePieceTokenizer() = default;
    std::shared_ptr<void> m_handle;  // the shim's processor
    int m_pieces = 0;
    int64_t m_end = 1, m_pad = 1;
};

// The cleaning step (lowercase, punctuation removed, whitespace collapsed), exposed for tests.
std::string siglipCleanText(const std::string& text);

}  // namespace vitscope
