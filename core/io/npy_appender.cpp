#include "io/npy_appender.h"

#include "error.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vitscope {

namespace {

std::string sysError(const std::string& what) { return what + ": " + std::strerror(errno); }

}  // namespace

NpyAppender::NpyAppender(const std::string& path, DType dtype, std::vector<int64_t> rowShape, int64_t resumeRows, std::size_t headerBytes)
    : m_path(path), m_dtype(dtype), m_rowShape(std::move(rowShape)), m_headerBytes(headerBytes) {
    m_rowBytes = static_cast<int64_t>(dtypeSize(dtype));
    for (int64_t d : m_rowShape) m_rowBytes *= d;
    m_fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (m_fd < 0) throw IoError(path, sysError("cannot open for writing"));
    if (resumeRows == 0) {
        if (::ftruncate(m_fd, 0) != 0) throw IoError(path, sysError("cannot truncate"));
        writeHeader(0);
    } else {
        struct stat st {};
        ::fstat(m_fd, &st);
        const int64_t need = static_cast<int64_t>(m_headerBytes) + resumeRows * m_rowBytes;
        if (st.st_size < need)
            throw FormatError(path, "holds fewer rows than progress.json records (" + std::to_string(st.st_size) + " bytes, need " +
                                        std::to_string(need) + "); delete it and start again");
        if (::ftruncate(m_fd, need) != 0) throw IoError(path, sysError("cannot truncate"));
    }
    ::lseek(m_fd, 0, SEEK_END);
}

NpyAppender::~NpyAppender() {
    if (m_fd >= 0) ::close(m_fd);
}

void NpyAppender::append(const at::Tensor& rows) {
    const at::Tensor t = rows.contiguous();
    if (t.numel() * static_cast<int64_t>(t.element_size()) % m_rowBytes != 0) throw InputError(m_path, "row size mismatch while appending");
    writeAll(t.data_ptr(), static_cast<std::size_t>(t.numel()) * t.element_size());
}

void NpyAppender::sync() {
    if (::fsync(m_fd) != 0) throw IoError(m_path, sysError("cannot flush"));
}

void NpyAppender::finish(int64_t rows) {
    writeHeader(rows);
    sync();
}

void NpyAppender::writeHeader(int64_t rows) {
    std::vector<int64_t> shape{rows};
    shape.insert(shape.end(), m_rowShape.begin(), m_rowShape.end());
    const std::string header = npyHeaderBytes(m_dtype, shape, m_headerBytes);
    if (header.size() != m_headerBytes) throw InputError(m_path, "npy header does not fit its fixed size");
    if (::pwrite(m_fd, header.data(), header.size(), 0) != static_cast<ssize_t>(header.size()))
        throw IoError(m_path, sysError("cannot write header"));
}

void NpyAppender::writeAll(const void* data, std::size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
        const ssize_t w = ::write(m_fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            throw IoError(m_path, sysError("cannot write"));
        }
        p += w;
        n -= static_cast<std::size_t>(w);
    }
}

}  // namespace vitscope
