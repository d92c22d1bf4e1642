#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace vitscope {

// Reads a whole regular file; throws IoError naming the path.
std::vector<uint8_t> readFileBytes(const std::string& path);
std::string readFileText(const std::string& path);
// Writes to PATH.partial and renames it into place, so a reader never sees half a file.
void writeFileAtomic(const std::string& path, const std::vector<uint8_t>& bytes);
void writeFileAtomic(const std::string& path, const std::string& text);

}  // namespace vitscope
