#include "parallel.h"

#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <dlfcn.h>
#include <exception>
#include <memory>
#include <mutex>
#include <pthread.h>
#include <string>
#include <thread>
#include <vector>

namespace vitscope {

namespace {

// OpenBLAS's run-time controls, looked up in the process (absent with any other BLAS).
struct OpenBlas {
    int (*getThreads)() = nullptr;
    void (*setThreads)(int) = nullptr;
    void (*readEnv)() = nullptr;
    int (*shutdown)() = nullptr;

    static const OpenBlas& get() {
        static const OpenBlas blas = [] {
            OpenBlas b;
            b.getThreads = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
            b.setThreads = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
            b.readEnv = reinterpret_cast<void (*)()>(dlsym(RTLD_DEFAULT, "openblas_read_env"));
            b.shutdown = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "blas_thread_shutdown_"));
            return b;
        }();
        return blas;
    }
    bool usable() const { return getThreads && setThreads; }
};

std::atomic<bool> g_enabled{[] {
    const char* env = std::getenv("VITSCOPE_SPLIT");
    return !(env && std::string(env) == "0");
}()};

thread_local bool t_inSplit = false;  // this thread runs a part of a split (or is a worker)

// Persistent workers (parts - 1 of them; the caller runs part 0). One split at a time; a split
// of n < parts items wakes only the n - 1 workers it needs (each waits on its own condition).
class Pool {
public:
    Pool(int parts, int blasThreads) : m_parts(parts), m_blasThreads(blasThreads) {
        for (int i = 1; i < parts; ++i) m_slots.push_back(std::make_unique<Slot>());
        for (int i = 1; i < parts; ++i) m_workers.emplace_back([this, i] { work(i); });
    }
    ~Pool() {
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            m_stop = true;
        }
        for (auto& slot : m_slots) slot->wake.notify_one();
        for (std::thread& t : m_workers) t.join();
    }
    int parts() const { return m_parts; }

    // False when another split holds the pool (the caller then runs inline).
    bool run(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
        std::unique_lock<std::mutex> busy(m_busy, std::try_to_lock);
        if (!busy.owns_lock()) return false;
        const OpenBlas& blas = OpenBlas::get();
        blas.setThreads(1);
        struct Restore {
            const OpenBlas& blas;
            int threads;
            ~Restore() { blas.setThreads(threads); }
        } restore{blas, m_blasThreads};
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            m_job = &fn;
            m_n = n;
            m_active = static_cast<int>(std::min<int64_t>(n, m_parts));
            m_grad = at::GradMode::is_enabled();
            m_error = nullptr;
            m_pending = m_active - 1;
            ++m_generation;
            for (int i = 1; i < m_active; ++i) m_slots[static_cast<std::size_t>(i - 1)]->generation = m_generation;
        }
        for (int i = 1; i < m_active; ++i) m_slots[static_cast<std::size_t>(i - 1)]->wake.notify_one();
        std::exception_ptr own;
        try {
            runPart(0);
        } catch (...) {
            own = std::current_exception();
        }
        std::unique_lock<std::mutex> lock(m_mutex);
        m_done.wait(lock, [this] { return m_pending == 0; });
        m_job = nullptr;
        if (own) std::rethrow_exception(own);
        if (m_error) std::rethrow_exception(m_error);
        return true;
    }

private:
    struct Slot {
        std::condition_variable wake;
        uint64_t generation = 0;  // the split this worker is asked to take part in
    };

    void runPart(int part) {
        const int64_t begin = m_n * part / m_active, end = m_n * (part + 1) / m_active;
        if (begin < end) (*m_job)(begin, end);
    }
    void work(int part) {
        t_inSplit = true;  // a part's own nested splits run inline
        Slot& slot = *m_slots[static_cast<std::size_t>(part - 1)];
        uint64_t seen = 0;
        for (;;) {
            std::unique_lock<std::mutex> lock(m_mutex);
            slot.wake.wait(lock, [&] { return m_stop || slot.generation != seen; });
            if (m_stop) return;
            seen = slot.generation;
            const bool grad = m_grad;
            lock.unlock();
            try {
                at::AutoGradMode mode(grad);
                runPart(part);
            } catch (...) {
                std::lock_guard<std::mutex> errorLock(m_mutex);
                if (!m_error) m_error = std::current_exception();
            }
            lock.lock();
            if (--m_pending == 0) m_done.notify_one();
        }
    }

    const int m_parts, m_blasThreads;
    std::vector<std::unique_ptr<Slot>> m_slots;  // worker i waits on m_slots[i - 1]
    std::vector<std::thread> m_workers;
    std::mutex m_busy, m_mutex;
    std::condition_variable m_done;
    const std::function<void(int64_t, int64_t)>* m_job = nullptr;
    int64_t m_n = 0;
    int m_active = 0;
    bool m_grad = false, m_stop = false;
    int m_pending = 0;
    uint64_t m_generation = 0;
    std::exception_ptr m_error;
};

std::atomic<int64_t> g_splitsRun{0};
std::atomic<bool> g_forked{false};  // a forked child has none of the pool's threads: it splits inline

// Parts per split: VITSCOPE_SPLIT=N (N >= 2) or OpenBLAS's thread count.
Pool* pool() {
    static Pool* p = [] {
        const OpenBlas& blas = OpenBlas::get();
        if (!blas.usable()) return static_cast<Pool*>(nullptr);
        const int threads = blas.getThreads();
        const char* env = std::getenv("VITSCOPE_SPLIT");
        const int asked = env ? std::atoi(env) : 0;
        const int parts = asked >= 2 ? std::min(asked, 256) : threads;
        if (parts < 2) return static_cast<Pool*>(nullptr);
        pthread_atfork(nullptr, nullptr, [] { g_forked = true; });
        return new Pool(parts, threads);  // lives as long as the process
    }();
    return g_forked ? nullptr : p;
}

}  // namespace

int splitParts() {
    Pool* p = g_enabled ? pool() : nullptr;
    return p ? p->parts() : 1;
}

int64_t splitsRun() { return g_splitsRun.load(); }

void setSplitEnabled(bool enabled) { g_enabled = enabled; }

void splitAcrossCores(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
    if (n <= 0) return;
    Pool* p = g_enabled && !t_inSplit && n > 1 ? pool() : nullptr;
    if (!p) {
        fn(0, n);
        return;
    }
    struct InSplit {
        InSplit() { t_inSplit = true; }
        ~InSplit() { t_inSplit = false; }
    } inSplit;
    if (p->run(n, fn))
        ++g_splitsRun;
    else
        fn(0, n);
}

void configureBlasWaiting() {
    static std::once_flag once;
    std::call_once(once, [] {
        const OpenBlas& blas = OpenBlas::get();
        if (!blas.usable() || !blas.readEnv || !blas.shutdown || std::getenv("OPENBLAS_THREAD_TIMEOUT")) return;
        if (blas.getThreads() < 2) return;
        setenv("OPENBLAS_THREAD_TIMEOUT", "16", 0);
        blas.readEnv();
        blas.shutdown();  // the next parallel call starts them again with the new wait
    });
}

}  // namespace vitscope
