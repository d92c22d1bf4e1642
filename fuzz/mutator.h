#pragma once
// A small deterministic mutator for the parser fuzz runs (fuzz/fuzz_parsers.cpp under
// AddressSanitizer, and a short bounded run inside the test suite).
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace vitscope::fuzz {

class Mutator {
public:
    explicit Mutator(uint64_t seed) : m_rng(seed) {}

    std::vector<uint8_t> mutate(const std::vector<uint8_t>& seed) {
        std::vector<uint8_t> b = seed;
        const int rounds = 1 + static_cast<int>(m_rng() % 4);
        for (int r = 0; r < rounds; ++r) step(b);
        return b;
    }

private:
    std::size_t pos(const std::vector<uint8_t>& b) { return b.empty() ? 0 : m_rng() % b.size(); }

    void step(std::vector<uint8_t>& b) {
        static const char* kTokens[] = {"{", "}", "[", "]", ",", ":", "\"", "-1", "0", "18446744073709551615",
                                        "9223372036854775807", "1e309", "null", "\"F32\"", "\"BF16\"", "\"I64\"",
                                        "'<f4'", "'<i8'", "(", ")", "True", "False", "\\u0000", "\xff\xfe"};
        switch (m_rng() % 9) {
        case 0:  // flip a bit
            if (!b.empty()) b[pos(b)] ^= static_cast<uint8_t>(1u << (m_rng() % 8));
            break;
        case 1:  // random byte
            if (!b.empty()) b[pos(b)] = static_cast<uint8_t>(m_rng());
            break;
        case 2:  // truncate
            if (!b.empty()) b.resize(pos(b));
            break;
        case 3: {  // delete a range
            if (b.empty()) break;
            const std::size_t at = pos(b), n = 1 + m_rng() % 16;
            b.erase(b.begin() + static_cast<long>(at), b.begin() + static_cast<long>(std::min(b.size(), at + n)));
            break;
        }
        case 4: {  // insert a syntax token
            const std::string t = kTokens[m_rng() % (sizeof(kTokens) / sizeof(kTokens[0]))];
            const std::size_t at = b.empty() ? 0 : m_rng() % (b.size() + 1);
            b.insert(b.begin() + static_cast<long>(at), t.begin(), t.end());
            break;
        }
        case 5: {  // overwrite a little-endian integer with a boundary value
            static const uint64_t kValues[] = {0, 1, 7, 8, 0x7f, 0xff, 0xffff, 0x7fffffff, 0xffffffff, ~0ull, 1ull << 40};
            if (b.size() < 8) break;
            const std::size_t at = m_rng() % (b.size() - 7);
            const uint64_t v = kValues[m_rng() % (sizeof(kValues) / sizeof(kValues[0]))];
            const int width = 1 << (m_rng() % 4);
            for (int i = 0; i < width; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
            break;
        }
        case 6: {  // replace a digit run with another number
            if (b.empty()) break;
            std::size_t at = pos(b);
            while (at < b.size() && (b[at] < '0' || b[at] > '9')) ++at;
            if (at >= b.size()) break;
            std::size_t end = at;
            while (end < b.size() && b[end] >= '0' && b[end] <= '9') ++end;
            const std::string v = std::to_string(m_rng() % 3 == 0 ? m_rng() : m_rng() % 1000);
            b.erase(b.begin() + static_cast<long>(at), b.begin() + static_cast<long>(end));
            b.insert(b.begin() + static_cast<long>(at), v.begin(), v.end());
            break;
        }
        case 7: {  // duplicate a range
            if (b.empty()) break;
            const std::size_t at = pos(b), n = std::min<std::size_t>(1 + m_rng() % 32, b.size() - at);
            std::vector<uint8_t> chunk(b.begin() + static_cast<long>(at), b.begin() + static_cast<long>(at + n));
            b.insert(b.begin() + static_cast<long>(pos(b)), chunk.begin(), chunk.end());
            break;
        }
        default:  // append garbage
            for (int i = 0, n = 1 + static_cast<int>(m_rng() % 8); i < n; ++i) b.push_back(static_cast<uint8_t>(m_rng()));
            break;
        }
    }

    std::mt19937_64 m_rng;
};

}  // namespace vitscope::fuzz
