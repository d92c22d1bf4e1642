#pragma once
// MATLAB's level-5 MAT-file format (what `save -v7` and scipy.io.savemat write; ImageNet's devkit
// ships meta.mat in it): a 128-byte header, then data elements, each a miMATRIX or a
// zlib-compressed (miCOMPRESSED) miMATRIX. Read: numeric arrays (any storage type, as doubles),
// char arrays (UTF-8 / UTF-16 storage), struct arrays and cell arrays; other classes (sparse,
// objects) are listed as Other and skipped. Torch-free and fuzzed on its own. Every size is
// checked against the bytes present before anything is allocated, a compressed element may not
// inflate past kMaxMatInflated, and nesting is bounded; anything wrong is a FormatError naming
// the file and the problem.
//
//   const MatFile mat = readMatV5("ILSVRC2012_devkit_t12/data/meta.mat");
//   const MatValue& synsets = mat.at("synsets");          // struct array [1860, 1]
//   const std::string& wnid = synsets.field(0, "WNID").text;
//   const double id = synsets.field(0, "ILSVRC2012_ID").scalar("ILSVRC2012_ID");
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace vitscope {

constexpr std::size_t kMaxMatInflated = std::size_t{256} << 20;  // bytes one compressed element may inflate to

struct MatValue {
    enum class Kind { Numeric, Char, Struct, Cell, Other };
    Kind kind = Kind::Numeric;
    std::vector<int64_t> dims;            // MATLAB's, column-major
    std::vector<double> numbers;          // Numeric: numel values (real part), column-major
    std::string text;                     // Char: UTF-8; the rows joined by '\n' when there are several
    std::vector<std::string> fieldNames;  // Struct
    std::vector<MatValue> elements;       // Struct: numel x fields (element e's field f at e * fields + f); Cell: numel
    std::string where;                    // the file, for errors

    int64_t numel() const;
    // Struct: element `index`'s field `name`; throws FormatError naming the file and field.
    const MatValue& field(int64_t index, const std::string& name) const;
    // Numeric with one element; throws FormatError naming the file and `what` otherwise.
    double scalar(const std::string& what) const;
};

struct MatFile {
    std::string where;
    std::vector<std::pair<std::string, MatValue>> variables;  // file order
    // Throws FormatError naming the file when there is no such variable.
    const MatValue& at(const std::string& name) const;
};

// Parses a whole MAT-file of `size` bytes; FormatError naming `where` for anything that is not a
// little-endian level-5 file of the layout above (a MATLAB 7.3 / HDF5 file is named as such).
MatFile parseMatV5(const uint8_t* bytes, std::size_t size, const std::string& where);
MatFile readMatV5(const std::string& path);  // IoError for a missing file

// Writes `variables` uncompressed (numeric as double, char as UTF-16, structs, cells), the layout
// the reader reads; for the shapes world's devkit and the tests. IoError naming `path`.
void writeMatV5(const std::string& path, const std::vector<std::pair<std::string, MatValue>>& variables);

// Builders for writeMatV5 (a row vector of one string / a scalar / a struct array [numel, 1]).
MatValue matString(const std::string& text);
MatValue matScalar(double value);
MatValue matStruct(const std::vector<std::string>& fields, int64_t numel, std::vector<MatValue> elements);

}  // namespace vitscope
