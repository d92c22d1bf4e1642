#pragma once
// Where the project's data lives: the resources/ text lists and the bundled models/. Searched
// in order: $VITSCOPE_DATA_DIR, <executable>/../share/vitscope (an installed copy), the source
// tree the binary was built from, the working directory.
#include <string>
#include <vector>

namespace vitscope {

struct Model;

std::vector<std::string> dataRoots();

// The first existing ROOT/relative, or "" when none has it.
std::string dataFile(const std::string& relative);

// The bundled shapes-world CLIP model's directory ("" when missing).
std::string bundledModelDir(const std::string& name = "shapes-clip");

// Word list for a property NAME (color, shape, ...): the shapes world's lists for models with its
// word vocabulary (vocab.txt), the general lists otherwise. Throws InputError when none exists.
std::string propertyWordList(const std::string& name, const Model& textModel);

// The property names that have a word list for this model's vocabulary, sorted.
std::vector<std::string> propertyNames(const Model& textModel);

}  // namespace vitscope
