#pragma once
// A .npy file written row by row: a fixed-size header (rows = 0 until finish()), appended rows,
// truncation to a known row count when a write resumes. Used by the dataset cache and by
// commands whose output is larger than memory.
#include "io/npy.h"

#include <ATen/ATen.h>

#include <cstddef>
#include <string>
#include <vector>

namespace vitscope {

class NpyAppender {
public:
    // headerBytes: the fixed header size (the dataset cache's files use 128). resumeRows > 0 keeps
    // that many rows already in the file (FormatError when it holds fewer) and appends after them.
    NpyAppender(const std::string& path, DType dtype, std::vector<int64_t> rowShape, int64_t resumeRows,
                std::size_t headerBytes = 128);
    ~NpyAppender();
    NpyAppender(const NpyAppender&) = delete;
    NpyAppender& operator=(const NpyAppender&) = delete;

    void append(const at::Tensor& rows);  // rows of the file's row shape, in its dtype
    void sync();
    void finish(int64_t rows);  // writes the header with the row count and flushes

private:
    void writeHeader(int64_t rows);
    void writeAll(const void* data, std::size_t n);

    std::string m_path;
    DType m_dtype;
    std::vector<int64_t> m_rowShape;
    int64_t m_rowBytes = 0;
    std::size_t m_headerBytes = 128;
    int m_fd = -1;
};

}  // namespace vitscope
