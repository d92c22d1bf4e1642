#pragma once
// Ground truth for the cache analyses: labels.csv tables matched to cached rows by path, zero-shot
// classifiers from "label<TAB>prompt" files, and text lists given as a file or inline.
#include "analysis/ablation.h"
#include "analysis/text_embed.h"

#include <map>
#include <string>
#include <vector>

namespace vitscope {

// A CSV table (first line the header; RFC 4180 quoting: "a, b" and "say ""hi""" are one cell
// each) as column -> value maps. Throws FormatError naming the file and line on ragged rows.
std::vector<std::map<std::string, std::string>> readCsvTable(const std::string& path);

// The labels.csv of an image folder: in the folder or in its parent (as the shapes world and its
// splits keep it); "" when there is none.
std::string labelsBeside(const std::string& imageFolder);
// A labels table's columns other than "file", in the header's order.
std::vector<std::string> labelColumns(const std::string& labelsFile);
// The value of `column` for every path ("" where the table has no row for it); rows are matched by
// the "file" column, relative to the table's folder. Throws naming the file for a missing column.
std::vector<std::string> columnForPaths(const std::string& labelsFile, const std::string& column, const std::vector<std::string>& paths);

// A file of texts (readTextList), or a comma-separated list given inline.
std::vector<std::string> textsOrFile(const std::string& arg);

// "label<TAB>prompt" lines; several prompts may vote for one label. `classNames` receives the
// labels in order of first appearance.
ZeroShotClassifier loadClassifier(const std::string& file, const TextEncoder& text, std::vector<std::string>* classNames);

// The class (and group: the values of `groupColumns` joined by '/') of every cached row, from a
// labels.csv whose "file" column holds paths relative to its folder.
RowLabels loadRowLabels(const std::string& labelsFile, const std::string& labelColumn, const std::vector<std::string>& groupColumns,
                        const std::string& classesFile, const std::vector<std::string>& classNames,
                        const std::vector<std::string>& cachedPaths);

}  // namespace vitscope
