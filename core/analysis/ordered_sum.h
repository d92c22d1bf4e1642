#pragma once
// A float64 sum of a sequence of equal-shaped tensors whose bits do not depend on how the sequence
// is cut into consecutive parts summed apart (the shards of a job array) and joined, nor on the
// batches the items arrive in:
//
//   OrderedSum a(64), b(64);
//   a.add(0, x.narrow(0, 0, 128));  a.close();     // items [0, 128)
//   b.add(128, x.narrow(0, 128, 72)); b.close();   // items [128, 200)
//   a.absorb(b);                                   // a.total(): bit for bit one part's sum of all 200
//
// The order is fixed by the items' positions: within a leaf of `leaf` items (leaf j holds items
// [j leaf, (j + 1) leaf)) one after another from the first; leaves pairwise up an aligned binary
// tree (a block of level l, index i holds leaves [i 2^l, (i + 1) 2^l) and is its two halves' sum,
// left + right); the blocks that remain (the range's maximal aligned blocks) left to right. A part
// starts at a multiple of `leaf` and keeps O(log) blocks; joining pushes the later part's blocks
// through the same rule, so the tree, and every rounding in it, is the one-part tree.
#include "io/tensor_io.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace vitscope {

class OrderedSum {
public:
    explicit OrderedSum(int64_t leaf = 64);
    // items [B, ...]: items first .. first + B - 1. The part's first add starts at a multiple of
    // the leaf; later adds continue where the last ended (InputError otherwise).
    void add(int64_t first, const at::Tensor& items);
    // The part ends here: its last leaf, even a short one, is complete. Nothing may follow but
    // absorb().
    void close();
    // A closed part that starts where this closed one ends (or either holds no item; a part of no
    // item need not be closed).
    void absorb(const OrderedSum& later);
    // The sum of every item added (float64, the items' shape; undefined when there were none).
    at::Tensor total() const;
    int64_t next() const { return m_next; }  // the item after the last added (-1: none yet)
    bool closed() const { return m_closed; }
    bool empty() const { return m_blocks.empty() && !m_open.defined(); }

    // The state as tensors named PREFIX.L.I (a block) and PREFIX.open (the leaf being filled), with
    // its position in PREFIX.position (int64 [next, closed]).
    void save(StateDict& out, const std::string& prefix) const;
    // FormatError naming `where` when the view holds no such state or a damaged one.
    void restore(const SafetensorsView& view, const std::string& prefix, const std::string& where);

private:
    struct Block {
        int level = 0;
        int64_t index = 0;
        at::Tensor sum;
    };
    void push(Block b);

    int64_t m_leaf;
    std::vector<Block> m_blocks;  // in item order
    at::Tensor m_open;            // the leaf being filled (undefined: none)
    int64_t m_first = -1;  // the part's first item (-1: none yet)
    int64_t m_next = -1;
    bool m_closed = false;
};

}  // namespace vitscope
