#include "io/npy.h"

#include "error.h"
#include "io/file_util.h"

#include <cctype>
#include <cstring>
#include <limits>

namespace vitscope {

namespace {

constexpr char kMagic[] = "\x93NUMPY";

// Finds `'key':` in the header dict and returns the position after the colon.
std::size_t findKey(const std::string& header, const std::string& key, const std::string& where) {
    for (const char quote : {'\'', '"'}) {
        const std::string pattern = std::string(1, quote) + key + quote;
        std::size_t pos = header.find(pattern);
        if (pos == std::string::npos) continue;
        pos += pattern.size();
        while (pos < header.size() && std::isspace(static_cast<unsigned char>(header[pos]))) ++pos;
        if (pos >= header.size() || header[pos] != ':') break;
        return pos + 1;
    }
    throw FormatError(where, "npy header has no '" + key + "' entry");
}

void skipSpace(const std::string& s, std::size_t& pos) {
    while (pos < s.size() && std::isspace(static_cast<unsigned char>(s[pos]))) ++pos;
}

DType parseDescr(const std::string& header, const std::string& where) {
    std::size_t pos = findKey(header, "descr", where);
    skipSpace(header, pos);
    if (pos >= header.size() || (header[pos] != '\'' && header[pos] != '"'))
        throw FormatError(where, "npy descr is not a string (structured arrays are not supported)");
    const char quote = header[pos];
    const std::size_t end = header.find(quote, pos + 1);
    if (end == std::string::npos) throw FormatError(where, "npy descr string is not terminated");
    const std::string descr = header.substr(pos + 1, end - pos - 1);
    static const std::pair<const char*, DType> kDescrs[] = {
        {"<f4", DType::F32}, {"<f2", DType::F16}, {"<f8", DType::F64}, {"<i8", DType::I64},
        {"<i4", DType::I32}, {"|u1", DType::U8},  {"<u1", DType::U8}};
    for (const auto& [name, dtype] : kDescrs)
        if (descr == name) return dtype;
    throw FormatError(where, "unsupported npy dtype '" + descr + "' (need <f4, <f2, <f8, <i8, <i4 or |u1)");
}

bool parseFortran(const std::string& header, const std::string& where) {
    std::size_t pos = findKey(header, "fortran_order", where);
    skipSpace(header, pos);
    if (header.compare(pos, 4, "True") == 0) return true;
    if (header.compare(pos, 5, "False") == 0) return false;
    throw FormatError(where, "npy fortran_order is neither True nor False");
}

std::vector<int64_t> parseShape(const std::string& header, const std::string& where) {
    std::size_t pos = findKey(header, "shape", where);
    skipSpace(header, pos);
    if (pos >= header.size() || header[pos] != '(') throw FormatError(where, "npy shape is not a tuple");
    ++pos;
    std::vector<int64_t> shape;
    while (true) {
        skipSpace(header, pos);
        if (pos >= header.size()) throw FormatError(where, "npy shape tuple is not terminated");
        if (header[pos] == ')') break;
        if (!std::isdigit(static_cast<unsigned char>(header[pos])))
            throw FormatError(where, "npy shape holds a non-integer dimension");
        int64_t v = 0;
        while (pos < header.size() && std::isdigit(static_cast<unsigned char>(header[pos]))) {
            if (v > (std::numeric_limits<int64_t>::max() - 9) / 10) throw FormatError(where, "npy dimension overflows");
            v = v * 10 + (header[pos] - '0');
            ++pos;
        }
        // Python may write 3L on old versions.
        if (pos < header.size() && header[pos] == 'L') ++pos;
        shape.push_back(v);
        skipSpace(header, pos);
        if (pos < header.size() && header[pos] == ',') ++pos;
        if (shape.size() > 32) throw FormatError(where, "npy shape has more than 32 dimensions");
    }
    return shape;
}

}  // namespace

int64_t NpyArray::count() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

NpyHeader parseNpyHeader(const uint8_t* bytes, std::size_t size, const std::string& where) {
    if (size < 10 || std::memcmp(bytes, kMagic, 6) != 0) throw FormatError(where, "not an .npy file (bad magic)");
    const int major = bytes[6];
    std::size_t headerLen = 0;
    std::size_t headerStart = 0;
    if (major == 1) {
        headerLen = bytes[8] | (static_cast<std::size_t>(bytes[9]) << 8);
        headerStart = 10;
    } else if (major == 2 || major == 3) {
        if (size < 12) throw FormatError(where, "npy header is truncated");
        headerLen = bytes[8] | (static_cast<std::size_t>(bytes[9]) << 8) | (static_cast<std::size_t>(bytes[10]) << 16) |
                    (static_cast<std::size_t>(bytes[11]) << 24);
        headerStart = 12;
    } else {
        throw FormatError(where, "unsupported npy format version " + std::to_string(major));
    }
    if (headerLen > size - headerStart) throw FormatError(where, "npy header is truncated");
    const std::string header(reinterpret_cast<const char*>(bytes + headerStart), headerLen);

    NpyHeader array;
    array.dtype = parseDescr(header, where);
    if (parseFortran(header, where)) throw FormatError(where, "Fortran-order npy arrays are not supported");
    array.shape = parseShape(header, where);
    std::size_t count = 1;
    for (int64_t d : array.shape) {
        if (d != 0 && count > std::numeric_limits<std::size_t>::max() / static_cast<std::size_t>(d))
            throw FormatError(where, "npy shape overflows");
        count *= static_cast<std::size_t>(d);
    }
    const std::size_t itemSize = dtypeSize(array.dtype);
    const std::size_t dataStart = headerStart + headerLen;
    const std::size_t available = size - dataStart;
    if (count > std::numeric_limits<std::size_t>::max() / itemSize) throw FormatError(where, "npy shape overflows");
    if (count * itemSize != available)
        throw FormatError(where, "npy data holds " + std::to_string(available) + " bytes but the shape needs " +
                                     std::to_string(count * itemSize));
    array.dataOffset = dataStart;
    return array;
}

NpyArray parseNpy(const uint8_t* bytes, std::size_t size, const std::string& where) {
    const NpyHeader header = parseNpyHeader(bytes, size, where);
    NpyArray array;
    array.dtype = header.dtype;
    array.shape = header.shape;
    const std::size_t dataStart = header.dataOffset;
    array.bytes.assign(bytes + dataStart, bytes + size);
    return array;
}

NpyArray readNpy(const std::string& path) {
    const std::vector<uint8_t> bytes = readFileBytes(path);
    return parseNpy(bytes.data(), bytes.size(), path);
}

std::string npyHeaderBytes(DType dtype, const std::vector<int64_t>& shapeDims, std::size_t minLength) {
    const char* descr = nullptr;
    switch (dtype) {
    case DType::F32: descr = "<f4"; break;
    case DType::F16: descr = "<f2"; break;
    case DType::F64: descr = "<f8"; break;
    case DType::I64: descr = "<i8"; break;
    case DType::I32: descr = "<i4"; break;
    case DType::U8: descr = "|u1"; break;
    case DType::BF16: throw InputError("npy", "bfloat16 cannot be stored in .npy");
    }
    std::string shape = "(";
    for (std::size_t i = 0; i < shapeDims.size(); ++i) {
        shape += std::to_string(shapeDims[i]);
        if (shapeDims.size() == 1 || i + 1 < shapeDims.size()) shape += ",";
        if (i + 1 < shapeDims.size()) shape += " ";
    }
    shape += ")";
    std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
    std::size_t total = 10 + header.size() + 1;
    if (total < minLength) {
        header.append(minLength - total, ' ');
        total = minLength;
    }
    header.append((64 - total % 64) % 64, ' ');
    header.push_back('\n');
    std::string out(kMagic, 6);
    out.push_back(1);
    out.push_back(0);
    out.push_back(static_cast<char>(header.size() & 0xff));
    out.push_back(static_cast<char>(header.size() >> 8));
    return out + header;
}

void writeNpy(const std::string& path, const NpyArray& array) {
    if (static_cast<std::size_t>(array.count()) * dtypeSize(array.dtype) != array.bytes.size())
        throw InputError(path, "array byte size does not match its shape");
    const std::string header = npyHeaderBytes(array.dtype, array.shape);
    std::vector<uint8_t> out(header.begin(), header.end());
    out.insert(out.end(), array.bytes.begin(), array.bytes.end());
    writeFileAtomic(path, out);
}

}  // namespace vitscope
