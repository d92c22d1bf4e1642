#include "io/pickle.h"

#include "error.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

namespace vitscope {

namespace {

struct DTypeRow {
    const char* storage;  // torch.<storage>
    StorageDType dtype;
    std::size_t size;
    const char* name;
};

constexpr DTypeRow kDTypes[] = {
    {"FloatStorage", StorageDType::F32, 4, "float32"},     {"HalfStorage", StorageDType::F16, 2, "float16"},
    {"BFloat16Storage", StorageDType::BF16, 2, "bfloat16"}, {"DoubleStorage", StorageDType::F64, 8, "float64"},
    {"LongStorage", StorageDType::I64, 8, "int64"},         {"IntStorage", StorageDType::I32, 4, "int32"},
    {"ShortStorage", StorageDType::I16, 2, "int16"},        {"CharStorage", StorageDType::I8, 1, "int8"},
    {"ByteStorage", StorageDType::U8, 1, "uint8"},          {"UntypedStorage", StorageDType::U8, 1, "uint8"},
    {"BoolStorage", StorageDType::Bool, 1, "bool"},         {"ComplexFloatStorage", StorageDType::C64, 8, "complex64"},
    {"ComplexDoubleStorage", StorageDType::C128, 16, "complex128"},
};

// Modules whose callables run code, touch files, processes or the network in Python. A pickle
// naming any of them is refused outright (nothing is ever called here either way).
constexpr const char* kRefusedModules[] = {
    "os", "posix", "nt", "subprocess", "sys", "shutil", "socket", "pty", "runpy", "importlib", "code", "codeop",
    "marshal", "pickle", "_pickle", "dill", "types", "ctypes", "webbrowser", "multiprocessing", "signal", "tempfile",
    "io", "_io", "urllib", "http", "ftplib", "smtplib", "asyncio", "threading", "_thread", "platform", "commands",
    "popen2", "pdb", "bdb", "timeit", "trace", "profile", "cProfile", "inspect", "gc", "pip", "setuptools", "distutils",
    "torch.hub", "torch.jit", "torch._C", "torch.ops", "torch.classes", "torch.serialization", "torch._dynamo",
    "numpy.testing", "numpy.f2py", "numpy.distutils", "numpy.ctypeslib",
};
constexpr const char* kRefusedBuiltins[] = {
    "eval", "exec", "compile", "open", "getattr", "setattr", "delattr", "__import__", "globals", "locals", "vars",
    "input", "breakpoint", "exit", "quit", "help", "execfile", "file", "reload", "apply", "memoryview", "type",
};

bool moduleIs(const std::string& module, const char* name) {
    const std::size_t n = std::strlen(name);
    return module.compare(0, n, name) == 0 && (module.size() == n || module[n] == '.');
}

void checkGlobal(const std::string& module, const std::string& name, const std::string& where) {
    // torch's C++ pickler (torch::pickle_save) tags typed containers with these helpers.
    if (module == "torch.jit._pickle" &&
        (name == "restore_type_tag" || name == "build_intlist" || name == "build_tensorlist" ||
         name == "build_doublelist" || name == "build_boollist"))
        return;
    // Benign names inside refused modules (a sparse tensor's layout record).
    if (module == "torch.serialization" && name == "_get_layout") return;
    bool refused = false;
    for (const char* m : kRefusedModules) refused = refused || moduleIs(module, m);
    // operator's getters call methods by name on what they are given (functools.partial and
    // operator.itemgetter, found in training checkpoints' hyper-parameters, stay readable).
    if ((module == "operator" || module == "_operator") && (name == "methodcaller" || name == "attrgetter")) refused = true;
    if (module == "builtins" || module == "__builtin__" || module == "__builtins__")
        for (const char* b : kRefusedBuiltins) refused = refused || name == b;
    if (name.find("system") != std::string::npos || name.find("popen") != std::string::npos ||
        name.find("exec") != std::string::npos)
        refused = true;
    if (refused)
        throw FormatError(where, "refused: the pickle names " + module + "." + name +
                                     ", which runs code when the file is opened by torch.load (never executed here)");
}

class Unpickler {
public:
    Unpickler(const uint8_t* bytes, std::size_t size, const std::string& where)
        : m_b(bytes), m_size(size), m_where(where), m_maxValues(std::min<std::size_t>(4 * size + 64, 0xFFFFFFF0u)),
          m_workBudget(16 * size + (1u << 20)) {}

    PickleData run() {
        for (;;) {
            const uint8_t op = byte();
            if (op == '.') break;
            step(op);
        }
        if (m_stack.size() != 1 || !m_marks.empty()) fail("pickle ends with " + std::to_string(m_stack.size()) + " values on its stack");
        m_out.root = m_stack.back();
        m_out.consumed = m_pos;
        return std::move(m_out);
    }

private:
    [[noreturn]] void fail(const std::string& problem) const {
        throw FormatError(m_where, "malformed pickle at byte " + std::to_string(m_pos) + ": " + problem);
    }
    void need(std::size_t n) const {
        if (n > m_size - m_pos) throw FormatError(m_where, "pickle is truncated (file cut short?)");
    }
    uint8_t byte() {
        need(1);
        return m_b[m_pos++];
    }
    uint64_t le(int n) {
        need(static_cast<std::size_t>(n));
        uint64_t v = 0;
        for (int i = n - 1; i >= 0; --i) v = (v << 8) | m_b[m_pos + static_cast<std::size_t>(i)];
        m_pos += static_cast<std::size_t>(n);
        return v;
    }
    std::string raw(uint64_t n) {
        if (n > m_size - m_pos) throw FormatError(m_where, "pickle is truncated (file cut short?)");
        std::string s(reinterpret_cast<const char*>(m_b + m_pos), static_cast<std::size_t>(n));
        m_pos += static_cast<std::size_t>(n);
        return s;
    }
    std::string line() {
        const std::size_t start = m_pos;
        while (m_pos < m_size && m_b[m_pos] != '\n') ++m_pos;
        if (m_pos >= m_size) throw FormatError(m_where, "pickle is truncated (file cut short?)");
        std::string s(reinterpret_cast<const char*>(m_b + start), m_pos - start);
        ++m_pos;
        return s;
    }

    uint32_t add(PickleValue v) {
        if (m_out.values.size() >= m_maxValues) fail("too many values");
        m_out.values.push_back(std::move(v));
        return static_cast<uint32_t>(m_out.values.size() - 1);
    }
    uint32_t make(PickleKind kind) {
        PickleValue v;
        v.kind = kind;
        return add(std::move(v));
    }
    uint32_t makeInt(int64_t i) {
        PickleValue v;
        v.kind = PickleKind::Int;
        v.integer = i;
        return add(std::move(v));
    }
    uint32_t makeText(PickleKind kind, std::string s) {
        PickleValue v;
        v.kind = kind;
        v.text = std::move(s);
        return add(std::move(v));
    }
    PickleValue& val(uint32_t i) { return m_out.values[i]; }

    void push(uint32_t v) { m_stack.push_back(v); }
    uint32_t pop() {
        if (m_stack.size() <= floor()) fail("stack underflow");
        const uint32_t v = m_stack.back();
        m_stack.pop_back();
        return v;
    }
    uint32_t& top() {
        if (m_stack.size() <= floor()) fail("stack underflow");
        return m_stack.back();
    }
    std::size_t floor() const { return m_marks.empty() ? 0 : m_marks.back(); }
    std::vector<uint32_t> popMark() {
        if (m_marks.empty()) fail("no mark on the stack");
        const std::size_t m = m_marks.back();
        m_marks.pop_back();
        std::vector<uint32_t> items(m_stack.begin() + static_cast<std::ptrdiff_t>(m), m_stack.end());
        m_stack.resize(m);
        return items;
    }
    uint32_t makeSeq(PickleKind kind, std::vector<uint32_t> items) {
        PickleValue v;
        v.kind = kind;
        v.items = std::move(items);
        return add(std::move(v));
    }

    void memoPut(uint64_t key) {
        if (m_stack.empty()) fail("memo put with an empty stack");
        m_memo[key] = m_stack.back();
    }
    void memoGet(uint64_t key) {
        auto it = m_memo.find(key);
        if (it == m_memo.end()) fail("memo key " + std::to_string(key) + " was never stored");
        push(it->second);
    }

    uint32_t global(const std::string& module, const std::string& name) {
        checkGlobal(module, name, m_where);
        return makeText(PickleKind::Global, module + "." + name);
    }

    void setItems(uint32_t dict, const std::vector<uint32_t>& kv) {
        if (kv.size() % 2) fail("odd number of dict items");
        PickleValue& d = val(dict);
        if (d.kind == PickleKind::Dict) {
            d.items.insert(d.items.end(), kv.begin(), kv.end());
        } else if (d.kind != PickleKind::Object) {  // an opaque object's __setitem__: dropped
            fail("SETITEM on a value that is not a dict");
        }
    }
    void appendItems(uint32_t list, const std::vector<uint32_t>& items) {
        PickleValue& l = val(list);
        if (l.kind == PickleKind::List || l.kind == PickleKind::Set) {
            l.items.insert(l.items.end(), items.begin(), items.end());
        } else if (l.kind != PickleKind::Object) {
            fail("APPEND on a value that is not a list");
        }
    }

    bool intAt(uint32_t i, int64_t& out) const {
        const PickleValue& v = m_out.values[i];
        if (v.kind == PickleKind::Int) out = v.integer;
        else if (v.kind == PickleKind::Bool) out = v.boolean ? 1 : 0;
        else return false;
        return true;
    }
    std::vector<int64_t> intTuple(uint32_t i, const char* what) {
        const PickleValue& v = val(i);
        if (v.kind != PickleKind::Tuple && v.kind != PickleKind::List) fail(std::string("tensor ") + what + " is not a tuple");
        if (v.items.size() > 64) fail(std::string("tensor ") + what + " has more than 64 dimensions");
        std::vector<int64_t> out;
        for (uint32_t item : v.items) {
            int64_t x = 0;
            if (!intAt(item, x) || x < 0) fail(std::string("tensor ") + what + " holds a negative or non-integer value");
            out.push_back(x);
        }
        return out;
    }

    // ('storage', torch.XStorage, key, location, numel[, view_metadata]) -> tensor fields.
    void readStorageId(uint32_t persId, PickleTensor& t) {
        const PickleValue& p = val(persId);
        if (p.kind != PickleKind::PersId) fail("tensor storage is not a persistent id");
        const PickleValue& id = val(p.items.at(0));
        if (id.kind != PickleKind::Tuple || id.items.size() < 5) fail("tensor storage id is not a 5-tuple");
        const std::string* tag = m_out.stringAt(id.items[0]);
        const PickleValue& type = val(id.items[1]);
        const std::string* key = m_out.stringAt(id.items[2]);
        int64_t numel = 0;
        if (!tag || *tag != "storage" || type.kind != PickleKind::Global || !key || !intAt(id.items[4], numel) || numel < 0)
            fail("tensor storage id is malformed");
        if (!storageDTypeFromName(type.text, t.dtype)) fail("unknown storage type " + type.text);
        t.storageKey = *key;
        t.storageNumel = static_cast<uint64_t>(numel);
        if (id.items.size() >= 6 && val(id.items[5]).kind == PickleKind::Tuple) {
            const PickleValue& view = val(id.items[5]);
            int64_t viewOffset = 0, viewSize = 0;
            const std::string* root = view.items.size() == 3 ? m_out.stringAt(view.items[0]) : nullptr;
            if (!root || !intAt(view.items[1], viewOffset) || !intAt(view.items[2], viewSize) || viewOffset < 0 || viewSize < 0)
                fail("storage view metadata is malformed");
            t.viewRoot = *root;
            t.viewOffset = static_cast<uint64_t>(viewOffset);
            t.storageNumel = static_cast<uint64_t>(viewSize);
        }
    }

    uint32_t rebuildTensor(const std::vector<uint32_t>& args) {
        if (args.size() < 4) fail("tensor record has " + std::to_string(args.size()) + " arguments");
        PickleTensor t;
        readStorageId(args[0], t);
        if (!intAt(args[1], t.offset) || t.offset < 0) fail("tensor storage offset is not a non-negative integer");
        t.sizes = intTuple(args[2], "size");
        t.strides = intTuple(args[3], "stride");
        if (t.sizes.size() != t.strides.size()) fail("tensor size and stride differ in length");
        // Elements the view reaches, and elements it holds, both checked against the storage.
        unsigned __int128 extent = static_cast<uint64_t>(t.offset), count = 1;
        bool empty = false;
        for (std::size_t d = 0; d < t.sizes.size(); ++d) {
            if (t.sizes[d] == 0) empty = true;
            extent += static_cast<unsigned __int128>(t.sizes[d] > 0 ? t.sizes[d] - 1 : 0) * static_cast<uint64_t>(t.strides[d]);
            count *= static_cast<uint64_t>(t.sizes[d]);
            if (count > (static_cast<unsigned __int128>(1) << 62)) count = static_cast<unsigned __int128>(1) << 62;
        }
        if (!empty && extent >= t.storageNumel)
            fail("tensor view reaches element " + std::to_string(static_cast<uint64_t>(extent)) + " of a storage of " +
                 std::to_string(t.storageNumel));
        if (!empty && count > 16 * static_cast<unsigned __int128>(t.storageNumel) + 1024)
            fail("tensor holds far more elements than its storage (a hostile stride?)");
        m_out.tensors.push_back(std::move(t));
        PickleValue v;
        v.kind = PickleKind::Tensor;
        v.tensor = static_cast<uint32_t>(m_out.tensors.size() - 1);
        return add(std::move(v));
    }

    // Copies of shared (memoised) containers are the one way a small input can ask for a lot of
    // work (one list reused by many calls): they draw on a budget proportional to the input.
    void charge(std::size_t items) {
        m_work += items;
        if (m_work > m_workBudget) fail("too much work for its size (a container copied over and over: hostile?)");
    }

    uint32_t call(uint32_t callable, uint32_t argsIndex) {
        const PickleValue& argv = val(argsIndex);
        if (argv.kind != PickleKind::Tuple) fail("call arguments are not a tuple");
        charge(argv.items.size());
        const std::vector<uint32_t> args = argv.items;
        const std::string name = val(callable).kind == PickleKind::Global ? val(callable).text : std::string("<call>");
        if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") return rebuildTensor(args);
        if (name == "torch._utils._rebuild_parameter" || name == "torch._utils._rebuild_parameter_with_state") {
            if (args.empty() || val(args[0]).kind != PickleKind::Tensor) fail("parameter record does not hold a tensor");
            return args[0];
        }
        if (name == "torch._tensor._rebuild_from_type_v2" && args.size() >= 3 && val(args[0]).kind == PickleKind::Global &&
            val(args[0]).text == "torch._utils._rebuild_tensor_v2")
            return call(args[0], args[2]);
        if (name == "collections.OrderedDict" || name == "builtins.dict" || name == "__builtin__.dict") {
            const uint32_t d = make(PickleKind::Dict);
            if (!args.empty()) {
                charge(val(args[0]).items.size());
                const std::vector<uint32_t> pairs = val(args[0]).items;
                for (uint32_t p : pairs) {
                    const PickleValue& pair = val(p);
                    if ((pair.kind != PickleKind::Tuple && pair.kind != PickleKind::List) || pair.items.size() != 2)
                        fail("dict items are not pairs");
                    const std::vector<uint32_t> kv = pair.items;
                    val(d).items.insert(val(d).items.end(), kv.begin(), kv.end());
                }
            }
            return d;
        }
        if (name == "builtins.set" || name == "builtins.frozenset" || name == "__builtin__.set" ||
            name == "__builtin__.frozenset") {
            std::vector<uint32_t> items;
            if (!args.empty()) {
                charge(val(args[0]).items.size());
                items = val(args[0]).items;
            }
            return makeSeq(PickleKind::Set, std::move(items));
        }
        if (name.rfind("torch.jit._pickle.", 0) == 0 && !args.empty()) return args[0];  // type tags, typed lists
        if (name == "torch.Size" && args.size() == 1 && val(args[0]).kind == PickleKind::Tuple) return args[0];
        PickleValue obj;
        obj.kind = PickleKind::Object;
        obj.text = name;
        obj.items = {argsIndex};
        return add(std::move(obj));
    }

    void build() {
        const uint32_t state = pop();
        PickleValue& target = val(top());
        if (target.kind == PickleKind::Object) target.state = state;
        // Dicts (OrderedDict._metadata), tensors and lists: the state is an attribute we do not need.
    }

    int64_t signedLe(const std::string& bytes) {
        if (bytes.empty()) return 0;
        uint64_t v = 0;
        for (std::size_t i = bytes.size(); i-- > 0;) v = (v << 8) | static_cast<uint8_t>(bytes[i]);
        if (bytes.size() < 8 && (static_cast<uint8_t>(bytes.back()) & 0x80)) v |= ~uint64_t{0} << (8 * bytes.size());
        return static_cast<int64_t>(v);
    }
    void pushLong(std::string bytes) {
        if (bytes.size() <= 8) {
            push(makeInt(signedLe(bytes)));
        } else {
            push(makeText(PickleKind::BigInt, std::move(bytes)));
        }
    }
    void pushTextInt(const std::string& s) {
        if (s == "01" || s == "00") {
            PickleValue v;
            v.kind = PickleKind::Bool;
            v.boolean = s == "01";
            push(add(std::move(v)));
            return;
        }
        errno = 0;
        char* end = nullptr;
        const long long x = std::strtoll(s.c_str(), &end, 10);
        if (end == s.c_str()) fail("INT opcode without a number");
        if (errno == ERANGE) push(makeText(PickleKind::BigInt, s));
        else push(makeInt(x));
    }
    void pushFloat(double d) {
        PickleValue v;
        v.kind = PickleKind::Float;
        v.number = d;
        push(add(std::move(v)));
    }
    void pushBool(bool b) {
        PickleValue v;
        v.kind = PickleKind::Bool;
        v.boolean = b;
        push(add(std::move(v)));
    }
    static std::string stripQuotes(const std::string& s) {
        if (s.size() >= 2 && (s.front() == '\'' || s.front() == '"') && s.back() == s.front()) return s.substr(1, s.size() - 2);
        return s;
    }

    void step(uint8_t op);

    const uint8_t* m_b;
    std::size_t m_size;
    std::size_t m_pos = 0;
    const std::string& m_where;
    std::size_t m_maxValues;
    std::size_t m_work = 0, m_workBudget;
    PickleData m_out;
    std::vector<uint32_t> m_stack;
    std::vector<std::size_t> m_marks;
    std::unordered_map<uint64_t, uint32_t> m_memo;
};

void Unpickler::step(uint8_t op) {
    switch (op) {
    case 0x80: byte(); break;                     // PROTO
    case 0x95: le(8); break;                      // FRAME: the framed bytes follow inline
    case 0x98: break;                             // READONLY_BUFFER
    case '(': m_marks.push_back(m_stack.size()); break;  // MARK
    case '0': pop(); break;                       // POP
    case '1': popMark(); break;                   // POP_MARK
    case '2': push(top()); break;                 // DUP
    case 'N': push(make(PickleKind::None)); break;
    case 0x88: pushBool(true); break;
    case 0x89: pushBool(false); break;
    case 'J': push(makeInt(static_cast<int32_t>(le(4)))); break;  // BININT
    case 'K': push(makeInt(static_cast<int64_t>(le(1)))); break;  // BININT1
    case 'M': push(makeInt(static_cast<int64_t>(le(2)))); break;  // BININT2
    case 0x8a: pushLong(raw(le(1))); break;       // LONG1
    case 0x8b: {                                  // LONG4
        const auto n = static_cast<int32_t>(le(4));
        if (n < 0) fail("negative LONG4 length");
        pushLong(raw(static_cast<uint64_t>(n)));
        break;
    }
    case 'I': pushTextInt(line()); break;
    case 'L': {
        std::string s = line();
        if (!s.empty() && s.back() == 'L') s.pop_back();
        pushTextInt(s);
        break;
    }
    case 'F': pushFloat(std::strtod(line().c_str(), nullptr)); break;
    case 'G': {                                   // BINFLOAT, big-endian
        need(8);
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | m_b[m_pos++];
        double d;
        std::memcpy(&d, &bits, 8);
        pushFloat(d);
        break;
    }
    case 'X': push(makeText(PickleKind::String, raw(le(4)))); break;   // BINUNICODE
    case 0x8c: push(makeText(PickleKind::String, raw(le(1)))); break;  // SHORT_BINUNICODE
    case 0x8d: push(makeText(PickleKind::String, raw(le(8)))); break;  // BINUNICODE8
    case 'V': push(makeText(PickleKind::String, line())); break;       // UNICODE (raw-unicode-escape, kept as is)
    case 'S': push(makeText(PickleKind::String, stripQuotes(line()))); break;  // STRING
    case 'T': {                                   // BINSTRING
        const auto n = static_cast<int32_t>(le(4));
        if (n < 0) fail("negative BINSTRING length");
        push(makeText(PickleKind::String, raw(static_cast<uint64_t>(n))));
        break;
    }
    case 'U': push(makeText(PickleKind::String, raw(le(1)))); break;   // SHORT_BINSTRING
    case 'B': push(makeText(PickleKind::Bytes, raw(le(4)))); break;    // BINBYTES
    case 'C': push(makeText(PickleKind::Bytes, raw(le(1)))); break;    // SHORT_BINBYTES
    case 0x8e: case 0x96: push(makeText(PickleKind::Bytes, raw(le(8)))); break;  // BINBYTES8, BYTEARRAY8
    case ')': push(makeSeq(PickleKind::Tuple, {})); break;
    case 't': push(makeSeq(PickleKind::Tuple, popMark())); break;
    case 0x85: { const uint32_t a = pop(); push(makeSeq(PickleKind::Tuple, {a})); break; }
    case 0x86: { const uint32_t b = pop(), a = pop(); push(makeSeq(PickleKind::Tuple, {a, b})); break; }
    case 0x87: { const uint32_t c = pop(), b = pop(), a = pop(); push(makeSeq(PickleKind::Tuple, {a, b, c})); break; }
    case ']': push(makeSeq(PickleKind::List, {})); break;
    case 'l': push(makeSeq(PickleKind::List, popMark())); break;
    case '}': push(make(PickleKind::Dict)); break;
    case 'd': {
        std::vector<uint32_t> kv = popMark();
        const uint32_t d = make(PickleKind::Dict);
        setItems(d, kv);
        push(d);
        break;
    }
    case 0x8f: push(makeSeq(PickleKind::Set, {})); break;  // EMPTY_SET
    case 0x91: push(makeSeq(PickleKind::Set, popMark())); break;  // FROZENSET
    case 0x90: { std::vector<uint32_t> items = popMark(); appendItems(top(), items); break; }  // ADDITEMS
    case 'a': { const uint32_t v = pop(); appendItems(top(), {v}); break; }
    case 'e': { std::vector<uint32_t> items = popMark(); appendItems(top(), items); break; }
    case 's': { const uint32_t v = pop(), k = pop(); setItems(top(), {k, v}); break; }
    case 'u': { std::vector<uint32_t> kv = popMark(); setItems(top(), kv); break; }
    case 'p': {                                   // PUT
        const std::string s = line();
        char* end = nullptr;
        const unsigned long long k = std::strtoull(s.c_str(), &end, 10);
        if (end == s.c_str()) fail("PUT without a key");
        memoPut(k);
        break;
    }
    case 'q': memoPut(le(1)); break;
    case 'r': memoPut(le(4)); break;
    case 0x94: memoPut(m_memo.size()); break;     // MEMOIZE
    case 'g': {
        const std::string s = line();
        char* end = nullptr;
        const unsigned long long k = std::strtoull(s.c_str(), &end, 10);
        if (end == s.c_str()) fail("GET without a key");
        memoGet(k);
        break;
    }
    case 'h': memoGet(le(1)); break;
    case 'j': memoGet(le(4)); break;
    case 'c': {                                   // GLOBAL "module\nname\n"
        const std::string module = line();
        const std::string name = line();
        push(global(module, name));
        break;
    }
    case 0x93: {                                  // STACK_GLOBAL
        const uint32_t n = pop(), m = pop();
        const std::string* module = m_out.stringAt(m);
        const std::string* name = m_out.stringAt(n);
        if (!module || !name) fail("STACK_GLOBAL needs two strings");
        push(global(*module, *name));
        break;
    }
    case 'R': { const uint32_t args = pop(), fn = pop(); push(call(fn, args)); break; }  // REDUCE
    case 0x81: { const uint32_t args = pop(), cls = pop(); push(call(cls, args)); break; }  // NEWOBJ
    case 0x92: { pop(); const uint32_t args = pop(), cls = pop(); push(call(cls, args)); break; }  // NEWOBJ_EX
    case 'i': {                                   // INST "module\nname\n", args from the mark
        const std::string module = line();
        const std::string name = line();
        const uint32_t cls = global(module, name);
        const uint32_t args = makeSeq(PickleKind::Tuple, popMark());
        push(call(cls, args));
        break;
    }
    case 'o': {                                   // OBJ: class and args from the mark
        std::vector<uint32_t> items = popMark();
        if (items.empty()) fail("OBJ without a class");
        const uint32_t cls = items.front();
        const uint32_t args = makeSeq(PickleKind::Tuple, std::vector<uint32_t>(items.begin() + 1, items.end()));
        push(call(cls, args));
        break;
    }
    case 'b': build(); break;
    case 'Q': { const uint32_t id = pop(); push(makeSeq(PickleKind::PersId, {id})); break; }  // BINPERSID
    case 'P': push(makeSeq(PickleKind::PersId, {makeText(PickleKind::String, line())})); break;  // PERSID
    case 0x82: case 0x83: case 0x84: fail("extension registry codes are not supported");
    case 0x97: fail("out-of-band buffers are not supported");
    default: fail("unknown opcode 0x" + [op] {
        const char* hex = "0123456789abcdef";
        return std::string{hex[op >> 4], hex[op & 15]};
    }());
    }
}

}  // namespace

std::size_t storageDTypeSize(StorageDType t) {
    for (const DTypeRow& r : kDTypes)
        if (r.dtype == t) return r.size;
    return 1;
}

const char* storageDTypeName(StorageDType t) {
    for (const DTypeRow& r : kDTypes)
        if (r.dtype == t) return r.name;
    return "?";
}

bool storageDTypeFromName(const std::string& global, StorageDType& out) {
    for (const DTypeRow& r : kDTypes) {
        if (global == std::string("torch.") + r.storage || global == std::string("torch.storage.") + r.storage) {
            out = r.dtype;
            return true;
        }
    }
    return false;
}

const std::string* PickleData::stringAt(uint32_t i) const {
    if (i >= values.size() || values[i].kind != PickleKind::String) return nullptr;
    return &values[i].text;
}

uint32_t PickleData::dictGet(uint32_t dict, const std::string& key) const {
    if (dict >= values.size() || values[dict].kind != PickleKind::Dict) return kNoValue;
    const auto& items = values[dict].items;
    uint32_t found = kNoValue;
    for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
        const std::string* k = stringAt(items[i]);
        if (k && *k == key) found = items[i + 1];
    }
    return found;
}

PickleData readPickle(const uint8_t* bytes, std::size_t size, const std::string& where) {
    return Unpickler(bytes, size, where).run();
}

}  // namespace vitscope
