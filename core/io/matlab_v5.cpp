#include "io/matlab_v5.h"

#include "error.h"
#include "io/file_util.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>

namespace vitscope {

namespace {

// Data types (MATLAB's "MAT-File Format", table 1-1) and array classes (table 1-3).
enum : uint32_t {
    miINT8 = 1,
    miUINT8 = 2,
    miINT16 = 3,
    miUINT16 = 4,
    miINT32 = 5,
    miUINT32 = 6,
    miSINGLE = 7,
    miDOUBLE = 9,
    miINT64 = 12,
    miUINT64 = 13,
    miMATRIX = 14,
    miCOMPRESSED = 15,
    miUTF8 = 16,
    miUTF16 = 17,
    miUTF32 = 18
};
enum : uint32_t { mxCELL = 1, mxSTRUCT = 2, mxCHAR = 4, mxDOUBLE = 6, mxUINT64 = 15, mxOPAQUE = 17 };
constexpr int kMaxDepth = 32;
constexpr uint32_t kMaxFieldNameLength = 256;

uint32_t le32(const uint8_t* p) {
    return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

// Bytes per value of a numeric storage type; 0 for the others.
std::size_t storageSize(uint32_t type) {
    switch (type) {
        case miINT8:
        case miUINT8:
        case miUTF8:
            return 1;
        case miINT16:
        case miUINT16:
        case miUTF16:
            return 2;
        case miINT32:
        case miUINT32:
        case miSINGLE:
        case miUTF32:
            return 4;
        case miDOUBLE:
        case miINT64:
        case miUINT64:
            return 8;
        default:
            return 0;
    }
}

double storedValue(uint32_t type, const uint8_t* p) {
    switch (type) {
        case miINT8:
            return static_cast<int8_t>(p[0]);
        case miUINT8:
            return p[0];
        case miINT16: {
            int16_t v;
            std::memcpy(&v, p, 2);
            return v;
        }
        case miUINT16: {
            uint16_t v;
            std::memcpy(&v, p, 2);
            return v;
        }
        case miINT32: {
            int32_t v;
            std::memcpy(&v, p, 4);
            return v;
        }
        case miUINT32:
            return le32(p);
        case miSINGLE: {
            float v;
            std::memcpy(&v, p, 4);
            return v;
        }
        case miINT64: {
            int64_t v;
            std::memcpy(&v, p, 8);
            return static_cast<double>(v);
        }
        case miUINT64: {
            uint64_t v;
            std::memcpy(&v, p, 8);
            return static_cast<double>(v);
        }
        default: {
            double v;
            std::memcpy(&v, p, 8);
            return v;
        }
    }
}

void appendUtf8(std::string& out, uint32_t c) {
    if (c >= 0xd800 && c < 0xe000) c = 0xfffd;  // a lone surrogate
    if (c < 0x80) {
        out += static_cast<char>(c);
    } else if (c < 0x800) {
        out += static_cast<char>(0xc0 | c >> 6), out += static_cast<char>(0x80 | (c & 0x3f));
    } else if (c < 0x10000) {
        out += static_cast<char>(0xe0 | c >> 12), out += static_cast<char>(0x80 | (c >> 6 & 0x3f)),
            out += static_cast<char>(0x80 | (c & 0x3f));
    } else {
        c = std::min<uint32_t>(c, 0x10ffff);
        out += static_cast<char>(0xf0 | c >> 18), out += static_cast<char>(0x80 | (c >> 12 & 0x3f));
        out += static_cast<char>(0x80 | (c >> 6 & 0x3f)), out += static_cast<char>(0x80 | (c & 0x3f));
    }
}

struct Element {
    uint32_t type = 0;
    const uint8_t* data = nullptr;
    std::size_t size = 0;
};

// Inflates a miCOMPRESSED element (a zlib stream), never past kMaxMatInflated.
std::vector<uint8_t> inflateElement(const Element& e, const std::string& where) {
    z_stream zs{};
    if (inflateInit(&zs) != Z_OK) throw FormatError(where, "zlib could not start");
    zs.next_in = const_cast<Bytef*>(e.data);
    zs.avail_in = static_cast<uInt>(e.size);
    std::vector<uint8_t> out;
    int ret = Z_OK;
    while (ret != Z_STREAM_END) {
        if (out.size() >= kMaxMatInflated) {
            inflateEnd(&zs);
            throw FormatError(
                where, "a compressed element inflates to more than " + std::to_string(kMaxMatInflated >> 20) + " MiB");
        }
        const std::size_t have = out.size();
        out.resize(std::min(kMaxMatInflated, std::max<std::size_t>(have * 2, 65536)));
        zs.next_out = out.data() + have;
        zs.avail_out = static_cast<uInt>(out.size() - have);
        ret = inflate(&zs, Z_NO_FLUSH);
        out.resize(out.size() - zs.avail_out);
        if (ret != Z_OK && ret != Z_STREAM_END) {
            const std::string msg = zs.msg ? zs.msg : (zs.avail_in == 0 ? "truncated" : "error " + std::to_string(ret));
            inflateEnd(&zs);
            throw FormatError(where, "a compressed element is corrupt (zlib: " + msg + ")");
        }
    }
    inflateEnd(&zs);
    return out;
}

class Reader {
public:
    Reader(const uint8_t* bytes, std::size_t size, const std::string& where)
        : m_p(bytes), m_end(bytes + size), m_where(where) {}
    bool atEnd() const { return m_p == m_end; }
    std::size_t left() const { return static_cast<std::size_t>(m_end - m_p); }

    // The next data element (the small format included), its padding skipped.
    Element next(const std::string& what) {
        if (left() < 8) fail(what + ": truncated data element tag");
        Element e;
        const uint32_t a = le32(m_p), b = le32(m_p + 4);
        if (a >> 16) {  // small data element: size and type in the first 4 bytes, data in the next 4
            e.type = a & 0xffff, e.size = a >> 16, e.data = m_p + 4;
            if (e.size > 4) fail(what + ": small data element of " + std::to_string(e.size) + " bytes (at most 4)");
            m_p += 8;
            return e;
        }
        e.type = a, e.size = b, e.data = m_p + 8;
        if (e.size > left() - 8)
            fail(what + ": element of " + std::to_string(e.size) + " bytes, only " + std::to_string(left() - 8) +
                 " left (truncated)");
        m_p += 8 + e.size;
        const std::size_t pad = e.type == miCOMPRESSED ? 0 : (8 - e.size % 8) % 8;  // compressed data is not padded
        m_p += std::min(pad, left());
        return e;
    }
    [[noreturn]] void fail(const std::string& problem) const { throw FormatError(m_where, problem); }

private:
    const uint8_t* m_p;
    const uint8_t* m_end;
    const std::string& m_where;
};

class MatrixParser {
public:
    explicit MatrixParser(const std::string& where) : m_where(where) {}

    // A miMATRIX element's array; `name` receives its name.
    MatValue parse(const Element& e, int depth, std::string* name) {
        Reader r(e.data, e.size, m_where);
        MatValue v;
        v.where = m_where;
        if (e.size == 0) {  // an empty array
            v.dims = {0, 0};
            return v;
        }
        if (depth > kMaxDepth) r.fail("arrays nested deeper than " + std::to_string(kMaxDepth) + " levels");
        const Element flags = r.next("array flags");
        if (flags.type != miUINT32 || flags.size != 8) r.fail("array flags are not 2 x uint32");
        const uint32_t cls = le32(flags.data) & 0xff;
        const bool complex = le32(flags.data) & 0x800;
        readDims(r, v);
        const Element nameEl = r.next("array name");
        if (nameEl.type != miINT8 && nameEl.type != miUINT8) r.fail("array name is not int8 text");
        if (name) name->assign(reinterpret_cast<const char*>(nameEl.data), nameEl.size);
        if (cls >= mxDOUBLE && cls <= mxUINT64) {
            readNumeric(r, v, complex);
        } else if (cls == mxCHAR) {
            readChars(r, v);
        } else if (cls == mxSTRUCT) {
            readStruct(r, v, depth);
        } else if (cls == mxCELL) {
            v.kind = MatValue::Kind::Cell;
            readElements(r, v, v.numel(), depth);
        } else if (cls <= mxOPAQUE) {        // objects, sparse arrays, functions
            v.kind = MatValue::Kind::Other;  // not read: its element's size skips it
        } else {
            r.fail("unknown array class " + std::to_string(cls));
        }
        return v;
    }

private:
    void readDims(Reader& r, MatValue& v) {
        const Element dims = r.next("dimensions");
        if (dims.type != miINT32 || dims.size < 8 || dims.size % 4 != 0)
            r.fail("dimensions are not 2 or more int32 values");
        int64_t numel = 1;
        for (std::size_t i = 0; i < dims.size; i += 4) {
            int32_t d;
            std::memcpy(&d, dims.data + i, 4);
            if (d < 0) r.fail("negative dimension " + std::to_string(d));
            v.dims.push_back(d);
            numel = d == 0 ? 0 : numel;
            if (numel > 0 && numel > (int64_t{1} << 40) / d) r.fail("an array of more than 2^40 elements");
            numel *= d;
        }
    }

    void readNumeric(Reader& r, MatValue& v, bool complex) {
        v.kind = MatValue::Kind::Numeric;
        const Element re = r.next("real part");
        const std::size_t size = storageSize(re.type);
        if (size == 0 || re.type == miUTF8 || re.type == miUTF16 || re.type == miUTF32)
            r.fail("numeric data stored as type " + std::to_string(re.type));
        if (re.size != static_cast<std::size_t>(v.numel()) * size)
            r.fail("numeric data of " + std::to_string(re.size) + " bytes for " + std::to_string(v.numel()) +
                   " elements");
        v.numbers.resize(static_cast<std::size_t>(v.numel()));
        for (std::size_t i = 0; i < v.numbers.size(); ++i) v.numbers[i] = storedValue(re.type, re.data + i * size);
        if (complex) r.next("imaginary part");  // the real part is what is read
    }

    void readChars(Reader& r, MatValue& v) {
        v.kind = MatValue::Kind::Char;
        const Element c = r.next("characters");
        const std::size_t n = static_cast<std::size_t>(v.numel()),
                          rows = v.numel() ? static_cast<std::size_t>(v.dims[0]) : 0;
        const std::size_t unit = c.type == miUINT16 || c.type == miUTF16                     ? 2
                                 : c.type == miUINT8 || c.type == miINT8 || c.type == miUTF8 ? 1
                                                                                             : 0;
        if (unit == 0) r.fail("characters stored as type " + std::to_string(c.type));
        if (c.type == miUTF8 && c.size != n) {  // multi-byte characters: one row of UTF-8 as it is
            if (rows > 1 || n == 0) r.fail("a char array of several rows in UTF-8 with non-ASCII characters");
            v.text.assign(reinterpret_cast<const char*>(c.data), c.size);
            return;
        }
        if (c.size != n * unit)
            r.fail("char data of " + std::to_string(c.size) + " bytes for " + std::to_string(n) + " characters");
        const std::size_t cols = rows ? n / rows : 0;
        for (std::size_t row = 0; row < rows; ++row) {
            if (row > 0) v.text += '\n';
            for (std::size_t col = 0; col < cols; ++col) {
                const uint8_t* p = c.data + (col * rows + row) * unit;
                appendUtf8(v.text, unit == 2 ? uint32_t(p[0]) | uint32_t(p[1]) << 8 : p[0]);
            }
        }
    }

    void readStruct(Reader& r, MatValue& v, int depth) {
        v.kind = MatValue::Kind::Struct;
        const Element lenEl = r.next("field name length");
        if (lenEl.type != miINT32 || lenEl.size != 4) r.fail("field name length is not one int32");
        const uint32_t len = le32(lenEl.data);
        if (len == 0 || len > kMaxFieldNameLength) r.fail("field name length " + std::to_string(len));
        const Element names = r.next("field names");
        if (names.type != miINT8 && names.type != miUINT8) r.fail("field names are not int8 text");
        if (names.size % len != 0)
            r.fail("field names of " + std::to_string(names.size) + " bytes, not a multiple of " + std::to_string(len));
        for (std::size_t i = 0; i < names.size; i += len) {
            const char* s = reinterpret_cast<const char*>(names.data + i);
            v.fieldNames.emplace_back(s, strnlen(s, len));
        }
        const std::size_t fields = v.fieldNames.size();
        if (fields > 0 && static_cast<std::size_t>(v.numel()) > r.left() / 8 / fields)
            r.fail(std::to_string(v.numel()) + " struct elements of " + std::to_string(fields) + " fields in " +
                   std::to_string(r.left()) + " bytes");
        readElements(r, v, v.numel() * static_cast<int64_t>(fields), depth);
    }

    // `count` miMATRIX elements (a cell's or a struct's), each at least a tag.
    void readElements(Reader& r, MatValue& v, int64_t count, int depth) {
        if (static_cast<uint64_t>(count) > r.left() / 8)
            r.fail(std::to_string(count) + " array elements in " + std::to_string(r.left()) + " bytes");
        v.elements.reserve(static_cast<std::size_t>(count));
        for (int64_t i = 0; i < count; ++i) {
            const Element e = r.next("element " + std::to_string(i));
            if (e.type != miMATRIX)
                r.fail("element " + std::to_string(i) + " of a struct or cell is not an array (type " +
                       std::to_string(e.type) + ")");
            v.elements.push_back(parse(e, depth + 1, nullptr));
        }
    }

    const std::string& m_where;
};

}  // namespace

int64_t MatValue::numel() const {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    return dims.empty() ? 0 : n;
}

const MatValue& MatValue::field(int64_t index, const std::string& name) const {
    if (kind != Kind::Struct) throw FormatError(where, "'" + name + "' is read from an array that is not a struct");
    const auto it = std::find(fieldNames.begin(), fieldNames.end(), name);
    if (it == fieldNames.end()) throw FormatError(where, "the struct has no field '" + name + "'");
    if (index < 0 || index >= numel())
        throw FormatError(where, "struct element " + std::to_string(index) + " is out of range");
    return elements[static_cast<std::size_t>(index) * fieldNames.size() +
                    static_cast<std::size_t>(it - fieldNames.begin())];
}

double MatValue::scalar(const std::string& what) const {
    if (kind != Kind::Numeric || numbers.size() != 1) throw FormatError(where, what + " is not one number");
    return numbers[0];
}

const MatValue& MatFile::at(const std::string& name) const {
    for (const auto& [n, v] : variables)
        if (n == name) return v;
    throw FormatError(where, "holds no variable '" + name + "'");
}

MatFile parseMatV5(const uint8_t* bytes, std::size_t size, const std::string& where) {
    if (size < 128) throw FormatError(where, "is not a MAT-file (shorter than its 128-byte header)");
    const uint16_t version = static_cast<uint16_t>(bytes[124] | bytes[125] << 8);
    if (std::memcmp(bytes, "MATLAB 7.3", 10) == 0 || (bytes[126] == 'I' && bytes[127] == 'M' && version == 0x0200))
        throw FormatError(where, "is a MATLAB 7.3 (HDF5) MAT-file; a level-5 file is needed (MATLAB: save -v7)");
    if (bytes[126] == 'M' && bytes[127] == 'I') throw FormatError(where, "is a big-endian MAT-file (not supported)");
    if (bytes[126] != 'I' || bytes[127] != 'M' || version != 0x0100)
        throw FormatError(where, "is not a level-5 MAT-file (no MATLAB 5.0 header)");
    MatFile file;
    file.where = where;
    Reader top(bytes + 128, size - 128, where);
    MatrixParser parser(where);
    while (!top.atEnd()) {
        const Element e = top.next("variable " + std::to_string(file.variables.size()));
        std::string name;
        if (e.type == miCOMPRESSED) {
            const std::vector<uint8_t> inflated = inflateElement(e, where);
            Reader inner(inflated.data(), inflated.size(), where);
            const Element m = inner.next("compressed variable");
            if (m.type != miMATRIX)
                inner.fail("a compressed element holds type " + std::to_string(m.type) + ", not an array");
            MatValue v = parser.parse(m, 0, &name);
            file.variables.emplace_back(name, std::move(v));
        } else if (e.type == miMATRIX) {
            MatValue v = parser.parse(e, 0, &name);
            file.variables.emplace_back(name, std::move(v));
        } else {
            top.fail("a top-level element of type " + std::to_string(e.type) + " is not an array");
        }
    }
    return file;
}

MatFile readMatV5(const std::string& path) {
    const std::vector<uint8_t> bytes = readFileBytes(path);
    return parseMatV5(bytes.data(), bytes.size(), path);
}

// ---- writing ----

namespace {

void put32(std::vector<uint8_t>& out, uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void putElement(std::vector<uint8_t>& out, uint32_t type, const void* data, std::size_t size) {
    const auto* p = static_cast<const uint8_t*>(data);
    if (size <= 4 && type != miMATRIX) {  // the small format, as MATLAB writes short names
        put32(out, static_cast<uint32_t>(size) << 16 | type);
        out.insert(out.end(), p, p + size);
        out.resize(out.size() + 4 - size, 0);
        return;
    }
    put32(out, type);
    put32(out, static_cast<uint32_t>(size));
    out.insert(out.end(), p, p + size);
    out.resize(out.size() + (8 - size % 8) % 8, 0);
}

std::vector<uint8_t> matrixElement(const std::string& name, const MatValue& v) {
    std::vector<uint8_t> body;
    const uint32_t cls = v.kind == MatValue::Kind::Numeric  ? mxDOUBLE
                         : v.kind == MatValue::Kind::Char   ? mxCHAR
                         : v.kind == MatValue::Kind::Struct ? mxSTRUCT
                                                            : mxCELL;
    if (v.kind == MatValue::Kind::Other) throw InputError(name, "cannot write an array of class Other");
    const uint32_t flags[2] = {cls, 0};
    putElement(body, miUINT32, flags, 8);
    std::vector<int32_t> dims(v.dims.begin(), v.dims.end());
    putElement(body, miINT32, dims.data(), dims.size() * 4);
    putElement(body, miINT8, name.data(), name.size());
    if (v.kind == MatValue::Kind::Numeric) {
        putElement(body, miDOUBLE, v.numbers.data(), v.numbers.size() * 8);
    } else if (v.kind == MatValue::Kind::Char) {  // UTF-16, as MATLAB writes it
        std::vector<uint8_t> units;
        for (const char c : v.text) {
            if (static_cast<unsigned char>(c) >= 0x80 || c == '\n')
                throw InputError(name, "writes one row of ASCII text only");
            units.push_back(static_cast<uint8_t>(c)), units.push_back(0);
        }
        putElement(body, miUINT16, units.data(), units.size());
    } else {
        if (v.kind == MatValue::Kind::Struct) {
            const int32_t len = 64;
            putElement(body, miINT32, &len, 4);
            std::vector<char> names(v.fieldNames.size() * 64, 0);
            for (std::size_t f = 0; f < v.fieldNames.size(); ++f)
                std::memcpy(&names[f * 64], v.fieldNames[f].data(), std::min<std::size_t>(63, v.fieldNames[f].size()));
            putElement(body, miINT8, names.data(), names.size());
        }
        for (const MatValue& e : v.elements) {
            const std::vector<uint8_t> m = matrixElement("", e);
            body.insert(body.end(), m.begin(), m.end());
        }
    }
    std::vector<uint8_t> out;
    putElement(out, miMATRIX, body.data(), body.size());
    return out;
}

}  // namespace

void writeMatV5(const std::string& path, const std::vector<std::pair<std::string, MatValue>>& variables) {
    std::vector<uint8_t> out(128, ' ');
    const char text[] = "MATLAB 5.0 MAT-file, written by vitscope";
    std::memcpy(out.data(), text, sizeof text - 1);
    std::fill(out.begin() + 116, out.begin() + 124, 0);
    out[124] = 0x00, out[125] = 0x01, out[126] = 'I', out[127] = 'M';
    for (const auto& [name, v] : variables) {
        const std::vector<uint8_t> m = matrixElement(name, v);
        out.insert(out.end(), m.begin(), m.end());
    }
    writeFileAtomic(path, out);
}

MatValue matString(const std::string& text) {
    MatValue v;
    v.kind = MatValue::Kind::Char;
    v.dims = {1, static_cast<int64_t>(text.size())};
    v.text = text;
    return v;
}

MatValue matScalar(double value) {
    MatValue v;
    v.dims = {1, 1};
    v.numbers = {value};
    return v;
}

MatValue matStruct(const std::vector<std::string>& fields, int64_t numel, std::vector<MatValue> elements) {
    MatValue v;
    v.kind = MatValue::Kind::Struct;
    v.dims = {numel, 1};
    v.fieldNames = fields;
    v.elements = std::move(elements);
    if (v.elements.size() != static_cast<std::size_t>(numel) * fields.size())
        throw InputError("matStruct", "needs numel x fields elements");
    return v;
}

}  // namespace vitscope
