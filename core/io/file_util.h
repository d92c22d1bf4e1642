#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace vitscope {

// Reads a whole regular file; throws IoError naming the path.
std::vector<uint8_t> readFileBytes(const std::string& path);
std::string readFileText(const std::string& path);

// The lines of a text, without their "\n" / "\r\n" ends; no final empty line for a trailing "\n".
std::vector<std::string> splitLines(const std::string& text);
// Writes to PATH.partial and renames it into place, so a reader never sees half a file.
void writeFileAtomic(const std::string& path, const std::vector<uint8_t>& bytes);
void writeFileAtomic(const std::string& path, const std::string& text);

// SHA-256 (FIPS 180-4) of a file's bytes as 64 lowercase hex digits, read in chunks (for the
// records that name a checkpoint or a data file); throws IoError naming the path.
std::string fileSha256(const std::string& path);
std::string sha256Hex(const std::string& bytes);

}  // namespace vitscope
