#include "analysis/ordered_sum.h"

#include "error.h"

#include <algorithm>

namespace vitscope {

OrderedSum::OrderedSum(int64_t leaf) : m_leaf(leaf) {
    if (leaf < 1) throw InputError("ordered sum", "needs leaves of at least one item");
}

void OrderedSum::add(int64_t first, const at::Tensor& items) {
    if (m_closed) throw InputError("ordered sum", "the part is closed; nothing can be added");
    if (m_next < 0 ? first % m_leaf != 0 : first != m_next)
        throw InputError("ordered sum", "items must start a part at a multiple of " + std::to_string(m_leaf) + " and then follow on");
    if (items.dim() < 1) throw InputError("ordered sum", "needs items [B, ...]");
    const at::Tensor x = items.to(at::kCPU, at::kDouble).contiguous();
    if (m_first < 0) m_first = first;
    for (int64_t i = 0; i < x.size(0); ++i) {
        const int64_t position = first + i;
        if (!m_open.defined())
            m_open = x.select(0, i).clone();
        else
            m_open.add_(x.select(0, i));
        if ((position + 1) % m_leaf == 0) {
            push({0, position / m_leaf, m_open});
            m_open = at::Tensor();
        }
    }
    m_next = first + x.size(0);
}

void OrderedSum::push(Block b) {
    m_blocks.push_back(std::move(b));
    while (m_blocks.size() >= 2) {
        const Block& left = m_blocks[m_blocks.size() - 2];
        const Block& right = m_blocks.back();
        if (left.level != right.level || left.index % 2 != 0 || right.index != left.index + 1) break;
        Block parent{left.level + 1, left.index / 2, left.sum + right.sum};
        m_blocks.pop_back();
        m_blocks.back() = std::move(parent);
    }
}

void OrderedSum::close() {
    if (m_open.defined()) push({0, (m_next - 1) / m_leaf, m_open});
    m_open = at::Tensor();
    m_closed = true;
}

void OrderedSum::absorb(const OrderedSum& later) {
    if ((!m_closed && !empty()) || !later.m_closed) throw InputError("ordered sum", "only closed parts can be joined");
    if (later.m_leaf != m_leaf) throw InputError("ordered sum", "parts of different leaf sizes cannot be joined");
    if (later.empty()) {
        m_closed = true;
        return;
    }
    if (empty()) {
        *this = later;
        return;
    }
    if (later.m_first != m_next) throw InputError("ordered sum", "the later part does not start where this one ends");
    for (const Block& b : later.m_blocks) push(b);
    m_next = later.m_next;
}

at::Tensor OrderedSum::total() const {
    at::Tensor acc;
    for (const Block& b : m_blocks) acc = acc.defined() ? acc + b.sum : b.sum.clone();
    if (m_open.defined()) acc = acc.defined() ? acc + m_open : m_open.clone();
    return acc;
}

void OrderedSum::save(StateDict& out, const std::string& prefix) const {
    for (const Block& b : m_blocks) out[prefix + "." + std::to_string(b.level) + "." + std::to_string(b.index)] = b.sum;
    if (m_open.defined()) out[prefix + ".open"] = m_open;
    out[prefix + ".position"] = at::tensor(std::vector<int64_t>{m_leaf, m_first, m_next, m_closed ? 1 : 0}, at::kLong);
}

namespace {

// "L.I" -> (level, index); false when the name is not a block's.
bool parseBlockName(const std::string& rest, int& level, int64_t& index) {
    const std::size_t dot = rest.find('.');
    if (dot == std::string::npos || dot == 0 || dot + 1 == rest.size()) return false;
    try {
        std::size_t a = 0, b = 0;
        level = std::stoi(rest.substr(0, dot), &a);
        index = std::stoll(rest.substr(dot + 1), &b);
        return a == dot && b == rest.size() - dot - 1 && level >= 0 && level < 62 && index >= 0;
    } catch (const std::exception&) {
        return false;
    }
}

}  // namespace

void OrderedSum::restore(const SafetensorsView& view, const std::string& prefix, const std::string& where) {
    const TensorEntry* pos = view.find(prefix + ".position");
    if (!pos) throw FormatError(where, "holds no " + prefix + " sums");
    const at::Tensor p = entryToTensor(view, *pos);
    if (p.scalar_type() != at::kLong || p.numel() != 4 || p[0].item<int64_t>() != m_leaf)
        throw FormatError(where, prefix + ".position is damaged or of another leaf size");
    OrderedSum r(m_leaf);
    r.m_first = p[1].item<int64_t>();
    r.m_next = p[2].item<int64_t>();
    r.m_closed = p[3].item<int64_t>() != 0;
    for (const TensorEntry& e : view.entries) {
        if (e.name.rfind(prefix + ".", 0) != 0) continue;
        const std::string rest = e.name.substr(prefix.size() + 1);
        Block b;
        if (rest == "position") continue;
        if (rest == "open") {
            r.m_open = entryToTensor(view, e);
        } else if (parseBlockName(rest, b.level, b.index)) {
            b.sum = entryToTensor(view, e);
            r.m_blocks.push_back(std::move(b));
        } else {
            throw FormatError(where, "holds an unknown sum " + e.name);
        }
    }
    std::sort(r.m_blocks.begin(), r.m_blocks.end(), [](const Block& a, const Block& b) { return (a.index << a.level) < (b.index << b.level); });
    // The blocks must tile [first, next) in leaves, the open leaf (if any) last.
    int64_t leaf = r.m_first < 0 ? 0 : r.m_first / m_leaf;
    at::Tensor shape;
    for (const Block& b : r.m_blocks) {
        if ((b.index << b.level) != leaf || b.sum.scalar_type() != at::kDouble || (shape.defined() && !b.sum.sizes().equals(shape.sizes())))
            throw FormatError(where, prefix + " sums do not tile their items");
        shape = b.sum;
        leaf += int64_t(1) << b.level;
    }
    const bool shortLast = r.m_next > 0 && r.m_next % m_leaf != 0;
    const int64_t end = r.m_next < 0 ? 0 : (r.m_next + m_leaf - 1) / m_leaf;
    const bool openOk = !r.m_open.defined() || (r.m_open.scalar_type() == at::kDouble && !r.m_closed && shortLast &&
                                                 (!shape.defined() || r.m_open.sizes().equals(shape.sizes())));
    if (!openOk || leaf + (r.m_open.defined() ? 1 : 0) != end || (r.m_first < 0) != (r.m_next < 0) || (r.m_first > 0 && r.m_first % m_leaf != 0))
        throw FormatError(where, prefix + " sums do not tile their items");
    *this = std::move(r);
}

}  // namespace vitscope
