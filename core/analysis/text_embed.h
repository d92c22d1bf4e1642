#pragma once
// The text side of every analysis: lists of texts read from files, and their unit-norm CLIP
// text embeddings (optionally as prompt-template ensembles).
#include "model/model.h"
#include "text/text_tokenizer.h"

#include <memory>
#include <string>
#include <vector>

namespace vitscope {

// Non-empty lines of a text file, trimmed; lines starting with '#' are comments. Throws IoError
// for a missing file and InputError naming the file when it holds no text.
std::vector<std::string> readTextList(const std::string& path);

// Class names of an ImageNet-style folder (one subfolder per class): the subfolder names,
// sorted, with '_' and '-' read as spaces. Throws IoError / InputError naming the folder.
std::vector<std::string> classNamesFromFolders(const std::string& dir);

class TextEncoder {
public:
    // `clip` must be a CLIP model with a tokenizer; throws InputError naming the model otherwise.
    explicit TextEncoder(const Model& clip);
    // [T, E] unit-norm float32 on the CPU, in batches of `batch` texts.
    at::Tensor encode(const std::vector<std::string>& texts, int batch = 256) const;
    // One unit-norm embedding per class: the normalised mean of the normalised embeddings of each
    // template ("a photo of a {}.") filled with the class name. [C, E].
    at::Tensor encodeEnsemble(const std::vector<std::string>& classNames, const std::vector<std::string>& templates) const;
    // Property / feature descriptions as Beyond CLIP encodes them (get_clip_text_embeds): the
    // template ensemble of resources/templates/classes.txt for BPE models; each text as it is for
    // word-vocabulary models (whose vocabularies lack the templates' words). [k, E].
    at::Tensor encodeDescriptions(const std::vector<std::string>& texts) const;
    bool wordVocabulary() const;
    // A word-vocabulary model's words (empty for BPE and SentencePiece models, which read any text).
    std::vector<std::string> vocabulary() const;

private:
    const Model& m_model;
    std::unique_ptr<TextTokenizer> m_tokenizer;
};

}  // namespace vitscope
