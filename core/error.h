#pragma once
// Typed errors thrown by core. Each carries the file (or tensor / argument) that was wrong and
// the problem, and formats as one line: "<where>: <problem>".
#include <stdexcept>
#include <string>

namespace vitscope {

class Error : public std::runtime_error {
public:
    Error(const std::string& where, const std::string& problem)
        : std::runtime_error(where.empty() ? problem : where + ": " + problem), m_where(where) {}
    const std::string& where() const { return m_where; }

private:
    std::string m_where;
};

// A file could not be opened, read or written.
class IoError : public Error {
    using Error::Error;
};
// A file's content is malformed (bad header, truncated data, bad offsets...).
class FormatError : public Error {
    using Error::Error;
};
// A checkpoint does not describe a supported model (unknown architecture, missing or
// wrong-shape tensors).
class ModelError : public Error {
    using Error::Error;
};
// A caller passed an argument that cannot be used (wrong shape, unknown option...).
class InputError : public Error {
    using Error::Error;
};
// A job stopped because its cancel flag was set (not a failure; finished work is kept).
class JobCancelled : public Error {
public:
    JobCancelled() : Error("", "cancelled") {}
};

}  // namespace vitscope
