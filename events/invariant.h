#pragma once
// Assertion tiers (see the root README):
// - CHORUS_INVARIANT: a broken invariant of the log (a gap, a bad hash where none can be,
//   a half-applied batch). Continuing would spread the damage, so it stops the process in
//   every build, after saying what broke.
// - CHORUS_DEBUG_CHECK: a costly self-check, compiled only in debug builds.
// Bad input from outside is never asserted: it is an error path returning Result.

#include <cstdio>
#include <cstdlib>

#define CHORUS_INVARIANT(cond, what)                                                          \
  do {                                                                                        \
    if (!(cond)) [[unlikely]] {                                                               \
      std::fprintf(stderr, "FATAL %s:%d log invariant broken: %s (%s)\n", __FILE__, __LINE__, \
                   (what), #cond);                                                            \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)

#ifdef NDEBUG
#define CHORUS_DEBUG_CHECK(cond, what) ((void)0)
#else
#define CHORUS_DEBUG_CHECK(cond, what) CHORUS_INVARIANT(cond, what)
#endif
