#include "analysis/labels.h"

#include "error.h"
#include "io/file_util.h"

#include <algorithm>
#include <filesystem>
#include <sstream>

namespace fs = std::filesystem;

namespace vitscope {

namespace {

// Cells of one CSV record starting at text[pos]; advances pos past the record's line end.
// Quoted cells may hold commas, doubled quotes and line breaks.
std::vector<std::string> csvRecord(const std::string& text, std::size_t& pos, const std::string& path, int line) {
    std::vector<std::string> cells(1);
    bool quoted = false;
    while (pos < text.size()) {
        const char c = text[pos++];
        if (quoted) {
            if (c == '"' && pos < text.size() && text[pos] == '"') {
                cells.back() += '"';
                ++pos;
            } else if (c == '"') {
                quoted = false;
            } else {
                cells.back() += c;
            }
        } else if (c == '"' && cells.back().empty()) {
            quoted = true;
        } else if (c == ',') {
            cells.emplace_back();
        } else if (c == '\n') {
            break;
        } else if (c != '\r') {
            cells.back() += c;
        }
    }
    if (quoted) throw FormatError(path, "line " + std::to_string(line) + " has an unterminated quoted cell");
    return cells;
}

}  // namespace

std::vector<std::map<std::string, std::string>> readCsvTable(const std::string& path) {
    const std::string text = readFileText(path);
    if (text.find('\0') != std::string::npos) throw FormatError(path, "not a CSV file (holds NUL bytes)");
    std::size_t pos = 0;
    int line = 1;
    const std::vector<std::string> header = csvRecord(text, pos, path, line);
    if (header.size() == 1 && header[0].empty()) throw FormatError(path, "is empty (a CSV table with a header line is expected)");
    std::vector<std::map<std::string, std::string>> rows;
    while (pos < text.size()) {
        ++line;
        const std::vector<std::string> cells = csvRecord(text, pos, path, line);
        if (cells.size() == 1 && cells[0].empty()) continue;  // blank line
        if (cells.size() != header.size())
            throw FormatError(path, "line " + std::to_string(line) + " has " + std::to_string(cells.size()) + " cells, the header " +
                                        std::to_string(header.size()));
        std::map<std::string, std::string> row;
        for (std::size_t k = 0; k < header.size(); ++k) row[header[k]] = cells[k];
        rows.push_back(std::move(row));
    }
    return rows;
}

std::string labelsBeside(const std::string& imageFolder) {
    std::error_code ec;
    const fs::path folder(imageFolder);
    for (const fs::path& dir : {folder, folder.parent_path()})
        if (!dir.empty() && fs::is_regular_file(dir / "labels.csv", ec)) return fs::absolute(dir / "labels.csv").lexically_normal().string();
    return {};
}

std::vector<std::string> labelColumns(const std::string& labelsFile) {
    const std::string text = readFileText(labelsFile);
    if (text.find('\0') != std::string::npos) throw FormatError(labelsFile, "not a CSV file (holds NUL bytes)");
    std::size_t pos = 0;
    std::vector<std::string> columns;
    for (std::string& c : csvRecord(text, pos, labelsFile, 1))
        if (c != "file" && !c.empty()) columns.push_back(std::move(c));
    return columns;
}

std::vector<std::string> columnForPaths(const std::string& labelsFile, const std::string& column, const std::vector<std::string>& paths) {
    const std::vector<std::map<std::string, std::string>> rows = readCsvTable(labelsFile);
    const fs::path base = fs::path(labelsFile).parent_path();
    std::map<std::string, std::string> byPath;
    for (const auto& row : rows) {
        const auto f = row.find("file");
        if (f == row.end()) throw FormatError(labelsFile, "has no file column");
        const auto v = row.find(column);
        if (v == row.end()) throw InputError(labelsFile, "has no column '" + column + "'");
        byPath[fs::weakly_canonical(base / f->second).string()] = v->second;
    }
    std::vector<std::string> out;
    out.reserve(paths.size());
    for (const std::string& p : paths) {
        const auto it = byPath.find(fs::weakly_canonical(p).string());
        out.push_back(it == byPath.end() ? std::string() : it->second);
    }
    return out;
}

std::vector<std::string> textsOrFile(const std::string& arg) {
    std::error_code ec;
    if (fs::is_regular_file(arg, ec)) return readTextList(arg);
    std::vector<std::string> out;
    std::stringstream ss(arg);
    std::string item;
    while (std::getline(ss, item, ',')) {
        item.erase(0, item.find_first_not_of(' '));
        item.erase(item.find_last_not_of(' ') + 1);
        if (!item.empty()) out.push_back(item);
    }
    if (out.empty()) throw InputError(arg, "names no texts");
    return out;
}

ZeroShotClassifier loadClassifier(const std::string& file, const TextEncoder& text, std::vector<std::string>* classNames) {
    ZeroShotClassifier classifier;
    std::vector<std::string> prompts;
    classNames->clear();
    for (const std::string& line : readTextList(file)) {
        const std::size_t tab = line.find('\t');
        if (tab == std::string::npos) throw FormatError(file, "line '" + line + "' is not label<TAB>prompt");
        const std::string label = line.substr(0, tab);
        auto it = std::find(classNames->begin(), classNames->end(), label);
        if (it == classNames->end()) it = classNames->insert(classNames->end(), label);
        classifier.promptClass.push_back(static_cast<int>(it - classNames->begin()));
        prompts.push_back(line.substr(tab + 1));
    }
    classifier.prompts = text.encode(prompts);
    return classifier;
}

RowLabels loadRowLabels(const std::string& labelsFile, const std::string& labelColumn, const std::vector<std::string>& groupColumns,
                        const std::string& classesFile, const std::vector<std::string>& classNames,
                        const std::vector<std::string>& cachedPaths) {
    const std::vector<std::map<std::string, std::string>> rows = readCsvTable(labelsFile);
    std::map<std::string, const std::map<std::string, std::string>*> byPath;
    const fs::path base = fs::path(labelsFile).parent_path();
    for (const auto& row : rows) {
        const auto f = row.find("file");
        if (f == row.end()) throw FormatError(labelsFile, "has no file column");
        byPath[fs::weakly_canonical(base / f->second).string()] = &row;
    }
    RowLabels labels;
    for (const std::string& p : cachedPaths) {
        const auto it = byPath.find(fs::weakly_canonical(p).string());
        if (it == byPath.end()) throw InputError(labelsFile, "has no row for cached image " + p);
        const auto& row = *it->second;
        const auto v = row.find(labelColumn);
        if (v == row.end()) throw InputError(labelsFile, "has no column '" + labelColumn + "' (--label-column)");
        const auto k = std::find(classNames.begin(), classNames.end(), v->second);
        if (k == classNames.end()) throw InputError(classesFile, "has no prompt for label '" + v->second + "'");
        labels.label.push_back(static_cast<int>(k - classNames.begin()));
        if (!groupColumns.empty()) {
            std::string g;
            for (const std::string& col : groupColumns) {
                const auto gv = row.find(col);
                if (gv == row.end()) throw InputError(labelsFile, "has no column '" + col + "' (--group-columns)");
                g += (g.empty() ? "" : "/") + gv->second;
            }
            labels.group.push_back(g);
        }
    }
    return labels;
}

}  // namespace vitscope
