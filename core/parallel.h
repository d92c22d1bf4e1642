#pragma once
// Work that BLAS's own threads do not share out - many small products (one per attention head),
// elementwise passes - split over the cores OpenBLAS was given, with OpenBLAS at one thread
// for the duration so that every core runs its own part.
//
//   splitAcrossCores(batch * heads, [&](int64_t begin, int64_t end) {
//       for (int64_t i = begin; i < end; ++i) ...;  // ATen calls on disjoint slices
//   });
//
// ATen itself stays at one intra-op thread (runtime.h says why). With any other BLAS, with
// OpenBLAS at one thread, while another split is running, from inside a split, with
// VITSCOPE_SPLIT=0 or with ATen at more than one thread (VITSCOPE_THREADS), fn runs once over
// the whole range on the calling thread. A split has as many parts as OpenBLAS has threads, or
// N with VITSCOPE_SPLIT=N (N >= 2; tests use it to run more parts than this machine has cores).
#include <cstdint>
#include <functional>

namespace vitscope {

// Runs fn(begin, end) on disjoint ranges covering [0, n), one per core, and returns when all
// have finished; the first exception thrown by any part is rethrown here. The calling
// thread's autograd mode holds in every part.
void splitAcrossCores(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn);

// How many parts a split uses now (1: it runs inline).
int splitParts();

// How many splits have run on more than one core in this process (tests check that a path split).
int64_t splitsRun();

// Turns splitting on or off for the process (tests and A/B timings compare the two).
void setSplitEnabled(bool enabled);

// OpenBLAS's idle threads busy-wait 2^28 cycles (~0.1 s) after each call before sleeping, so a
// split started just after a product shares its cores with them. Unless OPENBLAS_THREAD_TIMEOUT
// is set, this shortens that wait to 2^16 cycles and restarts OpenBLAS's threads. Called once,
// before any other thread uses BLAS (configureRuntime).
void configureBlasWaiting();

}  // namespace vitscope
