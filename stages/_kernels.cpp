// Distances fused with the selection of the k nearest points: stages._kernels.
//
// The training points come transposed (features x points), so the innermost
// loop runs over points and vectorises, while each distance is still summed
// feature after feature, in order, as SciPy's cdist sums it. Four queries
// share every load of a point (a register tile), and four features are
// taken per pass, which keeps the running sums in the first-level cache
// without changing their order. After each chunk of points, each query's
// distances are compared with its current k-th nearest, eight at a time;
// the few that beat it go into a short sorted list. No distance matrix is
// ever built.
//
// Screens (their proofs are in kernels.py): `nearest` also sums squared
// differences in float32 with fused multiply-adds, and Minkowski terms with an
// approximate power; `select` keeps the nearest by a matrix product's values;
// `refine` recomputes a few candidates exactly, as the loops above sum them.
//
// Compiled ahead of time, so a worker process imports it in a millisecond.
// On x86-64 the loops are compiled twice, for AVX2 and for the baseline, and
// the module picks the one the processor runs when it is loaded. Contraction into fused
// multiply-adds is off (setup.py): it would round differently from SciPy.

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <type_traits>

namespace {

constexpr Py_ssize_t CHUNK = 256;  // points per chunk
constexpr int QUERIES_PER_TILE = 4;

enum Metric {
    EUCLIDEAN = 0,
    MANHATTAN = 1,
    CHEBYSHEV = 2,
    SORENSEN = 3,
    COSINE = 4,
    MINKOWSKI = 5,
    // Squared Euclidean sums with fused multiply-adds, compared unrooted: a
    // fast screen whose candidates the caller recomputes exactly.
    SQUARED_SCREEN = 6,
    // Minkowski sums of rough_pow terms, unrooted: the same kind of screen.
    MINKOWSKI_SCREEN = 7,
    // Sorensen on non-negative rows, chosen by search_any, not by callers: only
    // the numerator is summed for every pair; see sorensen_slack.
    SORENSEN_BOUNDED = 8,
};

#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#define ALWAYS_INLINE_LAMBDA __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#define ALWAYS_INLINE_LAMBDA
#endif

#if defined(__GNUC__) && defined(__x86_64__)
#define HAVE_AVX2 1
#define AVX2 __attribute__((target("avx2,fma")))
// AVX-512's 32 vector registers, at AVX2's width: a tile's broadcast query
// values, point loads and sums (24 vectors) fit without spilling to the
// stack, which the 16 of AVX2 cannot hold. 256-bit vectors, since wider ones
// slow some processors' clocks and the loops' explicit vectors are 256 bits.
#define AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma,prefer-vector-width=256")))
#endif

template <typename Real>
struct Search {
    const Real* queries;   // n_queries x features
    const Real* points_t;  // features x n_points
    Py_ssize_t n_queries;
    Py_ssize_t n_points;
    Py_ssize_t features;
    Py_ssize_t k;
    const Py_ssize_t* query_groups;  // nullptr: no groups
    const Py_ssize_t* point_groups;
    Py_ssize_t* columns;  // n_queries x k, out
    Real* best;           // n_queries x k, out
    Real power;           // Minkowski's p (other metrics ignore it)
};

template <typename Real>
ALWAYS_INLINE Real larger(Real a, Real b) {
    return a > b ? a : b;
}

// x^p for 0 <= x < 2^(1000 / p) and p >= 1, to a relative error below
// 1e-11 * (1 + p) or an absolute one below 2^-1000, in plain arithmetic the
// compiler vectorises (std::pow is a call per term, most of Minkowski's time).
// For the screen only: its candidates are recomputed with std::pow.
// x = m 2^e with m in [sqrt(1/2), sqrt(2)); log2(m) by the series in
// t = (m - 1) / (m + 1), |t| < 0.172, to t^13; then 2^y = 2^n e^(r ln 2) with
// n the nearest integer to y and e^z by its Taylor series to z^12, |z| < 0.35.
ALWAYS_INLINE double rough_pow(double x, double p) {
    constexpr double SHIFT = 6755399441055744.0;  // 1.5 * 2^52: adding it rounds to an integer
    std::uint64_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    // m and e in integer arithmetic: a floating-point operation under a condition
    // could trap, and the compiler would then not vectorise the loop.
    const std::uint64_t mantissa = bits & 0x000FFFFFFFFFFFFFull;
    const std::uint64_t high = mantissa > 0x6A09E667F3BCCull;  // m >= sqrt(2): halve it
    const std::uint64_t m_bits = (mantissa | 0x3FF0000000000000ull) - (high << 52);
    const std::uint64_t e_bits = ((bits >> 52) + high) | 0x4330000000000000ull;
    double m, e;
    std::memcpy(&m, &m_bits, sizeof m);
    std::memcpy(&e, &e_bits, sizeof e);
    e = e - (4503599627370496.0 + 1023.0);  // the biased exponent, unbiased, as a double
    const double t = (m - 1.0) / (m + 1.0);
    const double t2 = t * t;
    constexpr double C = 2.8853900817779268;  // 2 / ln 2
    const double series =
        C + t2 * (C / 3 + t2 * (C / 5 + t2 * (C / 7 + t2 * (C / 9 + t2 * (C / 11 + t2 * (C / 13))))));
    const double y = p * (e + t * series);
    const double shifted = y + SHIFT;
    const double z = (y - (shifted - SHIFT)) * 0.6931471805599453;
    const double exp_z =
        1.0 + z * (1.0 + z * (1.0 / 2 + z * (1.0 / 6 + z * (1.0 / 24 + z * (1.0 / 120 + z * (1.0 / 720 +
        z * (1.0 / 5040 + z * (1.0 / 40320 + z * (1.0 / 362880 + z * (1.0 / 3628800 +
        z * (1.0 / 39916800 + z * (1.0 / 479001600))))))))))));
    // 2^n, n clamped to [-1020, 1020], with n + 1023 in the exponent field: a
    // result below 2^-1019 may be off by that much; larger ones the caller rules out.
    std::uint64_t shifted_bits;
    std::memcpy(&shifted_bits, &shifted, sizeof shifted_bits);
    std::int64_t n = static_cast<std::int64_t>(shifted_bits - 0x4338000000000000ull);
    n = n < -1020 ? -1020 : n;
    n = n > 1020 ? 1020 : n;
    const std::uint64_t nonzero = bits >= 0x0170000000000000ull;  // x >= 2^-1000, else 0
    const std::uint64_t power_bits = (static_cast<std::uint64_t>(n + 1023) << 52) * nonzero;
    double two_n;
    std::memcpy(&two_n, &power_bits, sizeof two_n);
    return exp_z * two_n;
}

// One feature's share of a summed distance: (q - p)^2, |q - p|, |q - p|^power,
// or, for cosine (rows normalised by the caller), q * p.
template <int M, typename Real>
ALWAYS_INLINE Real term(Real q, Real p, Real power) {
    if constexpr (M == EUCLIDEAN || M == SQUARED_SCREEN) {
        Real d = q - p;
        return d * d;
    } else if constexpr (M == COSINE) {
        return q * p;
    } else if constexpr (M == MINKOWSKI) {
        return std::pow(std::fabs(q - p), power);
    } else if constexpr (M == MINKOWSKI_SCREEN) {
        return static_cast<Real>(rough_pow(std::fabs(double(q) - double(p)), power));
    } else {
        return std::fabs(q - p);
    }
}

// Sorensen's denominator, D = sum |q + p|, is at most S = sum |q| + sum |p|
// (equal for non-negative rows, up to rounding), so a pair whose numerator N
// exceeds the k-th distance times S cannot enter a query's list: it needs no
// denominator. With u the unit roundoff and d features, the computed N / D is
// at least N / S ((1 - u) / (1 + u))^(d + 2) in computed sums and products, so
// a pair is left out only when N > (k-th x slack) x S, with the slack
// 1 + 8 (d + 2) u, more than that factor's inverse while d u is small; the few
// pairs kept are summed exactly, as the plain kernel sums them, and compared.
// Rows with a negative value (where D may be 0 while N is not), or a value so
// large that a sum could overflow (D to infinity while S is finite), take the
// plain kernel.
template <typename Real>
ALWAYS_INLINE Real sorensen_slack(Py_ssize_t features) {
    return Real(1) + Real(4) * Real(features + 2) * std::numeric_limits<Real>::epsilon();
}

// Whether every value of the queries and the points is a number from 0 to a
// bound under which no sum of 2 (features + 1) of them overflows.
template <typename Real>
bool all_boundable(const Search<Real>& s) {
    const Real limit = std::numeric_limits<Real>::max() / Real(2 * (s.features + 1));
    bool outside = false;
    const Py_ssize_t n_query_values = s.n_queries * s.features;
    for (Py_ssize_t n = 0; n < n_query_values; ++n) {
        outside |= !(s.queries[n] >= 0 && s.queries[n] <= limit);
    }
    const Py_ssize_t n_point_values = s.n_points * s.features;
    for (Py_ssize_t n = 0; n < n_point_values; ++n) {
        outside |= !(s.points_t[n] >= 0 && s.points_t[n] <= limit);
    }
    return !outside;
}

// distance[b][j] for queries first..first+T-1 and points start..start+width-1.
// Sorensen keeps its numerator in `distance` and its denominator in `scratch`;
// SORENSEN_BOUNDED only its numerator, in `distance`.
template <int M, int T, typename Real>
ALWAYS_INLINE void tile_distances(const Search<Real>& s, Py_ssize_t first, Py_ssize_t start,
                                  Py_ssize_t width, Real (*__restrict distance)[CHUNK],
                                  Real (*__restrict scratch)[CHUNK]) {
    const Real* q[T];
    for (int b = 0; b < T; ++b) {
        q[b] = s.queries + (first + b) * s.features;
        std::memset(distance[b], 0, sizeof(Real) * width);
        if constexpr (M == SORENSEN) std::memset(scratch[b], 0, sizeof(Real) * width);
    }
    const Py_ssize_t stride = s.n_points;
    Py_ssize_t f = 0;
    for (; f + 4 <= s.features; f += 4) {
        const Real* __restrict p0 = s.points_t + f * stride + start;
        const Real* __restrict p1 = p0 + stride;
        const Real* __restrict p2 = p1 + stride;
        const Real* __restrict p3 = p2 + stride;
        Real q0[T], q1[T], q2[T], q3[T];
        for (int b = 0; b < T; ++b) {
            q0[b] = q[b][f];
            q1[b] = q[b][f + 1];
            q2[b] = q[b][f + 2];
            q3[b] = q[b][f + 3];
        }
        for (Py_ssize_t j = 0; j < width; ++j) {
            const Real a0 = p0[j], a1 = p1[j], a2 = p2[j], a3 = p3[j];
#pragma GCC unroll 4
            for (int b = 0; b < T; ++b) {
                if constexpr (M == SQUARED_SCREEN) {
                    const Real d0 = q0[b] - a0, d1 = q1[b] - a1, d2 = q2[b] - a2, d3 = q3[b] - a3;
                    distance[b][j] = std::fma(
                        d3, d3, std::fma(d2, d2, std::fma(d1, d1, std::fma(d0, d0, distance[b][j]))));
                } else if constexpr (M == CHEBYSHEV) {
                    const Real m = larger(larger(std::fabs(q0[b] - a0), std::fabs(q1[b] - a1)),
                                          larger(std::fabs(q2[b] - a2), std::fabs(q3[b] - a3)));
                    distance[b][j] = larger(m, distance[b][j]);
                } else {
                    distance[b][j] = distance[b][j] + term<M>(q0[b], a0, s.power) +
                                     term<M>(q1[b], a1, s.power) + term<M>(q2[b], a2, s.power) +
                                     term<M>(q3[b], a3, s.power);
                    if constexpr (M == SORENSEN) {
                        scratch[b][j] = scratch[b][j] + std::fabs(q0[b] + a0) +
                                        std::fabs(q1[b] + a1) + std::fabs(q2[b] + a2) +
                                        std::fabs(q3[b] + a3);
                    }
                }
            }
        }
    }
    for (; f < s.features; ++f) {
        const Real* __restrict p = s.points_t + f * stride + start;
        for (Py_ssize_t j = 0; j < width; ++j) {
            const Real a = p[j];
#pragma GCC unroll 4
            for (int b = 0; b < T; ++b) {
                const Real qf = q[b][f];
                if constexpr (M == CHEBYSHEV) {
                    distance[b][j] = larger(std::fabs(qf - a), distance[b][j]);
                } else {
                    distance[b][j] += term<M>(qf, a, s.power);
                    if constexpr (M == SORENSEN) scratch[b][j] += std::fabs(qf + a);
                }
            }
        }
    }
    if constexpr (M == SORENSEN) {  // Bray-Curtis; 0 where both rows are all zero
        for (int b = 0; b < T; ++b) {
            for (Py_ssize_t j = 0; j < width; ++j) {
                const Real sum = scratch[b][j];
                distance[b][j] = sum != 0 ? distance[b][j] / sum : Real(0);
            }
        }
    }
    if constexpr (M == COSINE) {  // scikit-learn's 1 - similarity, clipped to [0, 2]
        for (int b = 0; b < T; ++b) {
            for (Py_ssize_t j = 0; j < width; ++j) {
                const Real d = Real(1) - distance[b][j];
                distance[b][j] = d < 0 ? Real(0) : (d > 2 ? Real(2) : d);
            }
        }
    }
    if constexpr (M == MINKOWSKI) {  // SciPy's and scikit-learn's (sum |q - p|^p)^(1/p)
        const Real root = Real(1) / s.power;
        for (int b = 0; b < T; ++b) {
            for (Py_ssize_t j = 0; j < width; ++j) distance[b][j] = std::pow(distance[b][j], root);
        }
    }
}

// Whether any of WIDE distances is below `bound`: whole-vector comparisons
// (GCC's vector extensions, lowered to the instruction set the caller is
// compiled for) OR-ed together, so a block with no winner, by far the most
// common case once the k-th has settled, costs a few instructions.
constexpr Py_ssize_t WIDE = 32;

template <typename Real>
ALWAYS_INLINE bool any_below(const Real* __restrict values, Real bound) {
    typedef Real Vector __attribute__((vector_size(32)));
    constexpr int LANES = 32 / sizeof(Real);
    Vector limit;
    for (int l = 0; l < LANES; ++l) limit[l] = bound;
    Vector first;
    std::memcpy(&first, values, sizeof first);
    auto below = first < limit;
    for (int v = 1; v < WIDE / LANES; ++v) {
        Vector next;
        std::memcpy(&next, values + v * LANES, sizeof next);
        below |= next < limit;
    }
    std::uint64_t words[4];
    std::memcpy(words, &below, sizeof words);
    return (words[0] | words[1] | words[2] | words[3]) != 0;
}

// Whether any of WIDE numerators is at most bound x (query_sum + its point's sum).
template <typename Real>
ALWAYS_INLINE bool any_within(const Real* __restrict values, const Real* __restrict sums,
                              Real query_sum, Real bound) {
    typedef Real Vector __attribute__((vector_size(32)));
    constexpr int LANES = 32 / sizeof(Real);
    Vector limit, own;
    for (int l = 0; l < LANES; ++l) {
        limit[l] = bound;
        own[l] = query_sum;
    }
    Vector first, first_sums;
    std::memcpy(&first, values, sizeof first);
    std::memcpy(&first_sums, sums, sizeof first_sums);
    auto within = first <= limit * (own + first_sums);
    for (int v = 1; v < WIDE / LANES; ++v) {
        Vector next, next_sums;
        std::memcpy(&next, values + v * LANES, sizeof next);
        std::memcpy(&next_sums, sums + v * LANES, sizeof next_sums);
        within |= next <= limit * (own + next_sums);
    }
    std::uint64_t words[4];
    std::memcpy(words, &within, sizeof words);
    return (words[0] | words[1] | words[2] | words[3]) != 0;
}

// Four columns, beside four distances.
typedef Py_ssize_t Columns __attribute__((vector_size(4 * sizeof(Py_ssize_t))));

// Insert distance d, of column c, into a query's k nearest so far (ascending),
// the k-th dropping out: each entry larger than d takes the one before it, or
// d if that one is not larger. Equal distances stay ahead of d (they came from
// lower columns). Each place depends only on its own and its predecessor's old
// entries, so the list is rewritten from the end, a vector at a time, with
// comparisons and blends and no branch on where d lands: that branch (or
// memmove's on its length) mispredicted on nearly every insertion and cost
// more than the rewrite.
template <typename Real>
ALWAYS_INLINE void insert_nearest(Real* __restrict list, Py_ssize_t* __restrict columns,
                                  Py_ssize_t k, Real d, Py_ssize_t c) {
    constexpr int LANES = 4;  // float's too: its mask then widens to the columns' in one step
    constexpr Py_ssize_t LONG_LIST = 32;
    typedef Real Values __attribute__((vector_size(LANES * sizeof(Real))));
    const Py_ssize_t whole = k / LANES * LANES;
    for (Py_ssize_t p = k - 1; p >= whole; --p) {  // the places beyond whole vectors
        const Real here = list[p];
        const Real before = p > 0 ? list[p - 1] : -HUGE_VAL;
        const Py_ssize_t column_before = p > 0 ? columns[p - 1] : -1;
        const bool moves = here > d, takes_before = before > d;
        list[p] = moves ? (takes_before ? before : d) : here;
        columns[p] = moves ? (takes_before ? column_before : c) : columns[p];
    }
    Values ds;
    Columns cs;
    for (int l = 0; l < LANES; ++l) {
        ds[l] = d;
        cs[l] = c;
    }
    auto rewrite = [&](Py_ssize_t p, Values here, Values before, Columns here_columns,
                       Columns before_columns) ALWAYS_INLINE_LAMBDA {
        const auto moves = here > ds;
        const auto takes_before = before > ds;
        const Values next = moves ? (takes_before ? before : ds) : here;
        const Columns next_columns =
            __builtin_convertvector(moves, Columns)
                ? (__builtin_convertvector(takes_before, Columns) ? before_columns : cs)
                : here_columns;
        std::memcpy(list + p, &next, sizeof next);
        std::memcpy(columns + p, &next_columns, sizeof next_columns);
        return takes_before[0] != 0;  // then the vector before this one changes too
    };
    auto rewrite_at = [&](Py_ssize_t p) ALWAYS_INLINE_LAMBDA {
        Values here, before;
        Columns here_columns, before_columns;
        std::memcpy(&here, list + p, sizeof here);
        std::memcpy(&before, list + p - 1, sizeof before);
        std::memcpy(&here_columns, columns + p, sizeof here_columns);
        std::memcpy(&before_columns, columns + p - 1, sizeof before_columns);
        return rewrite(p, here, before, here_columns, before_columns);
    };
    if (k > LONG_LIST) {  // stop where d lands: one mispredicted exit, against rewriting it all
        for (Py_ssize_t p = whole - LANES; p > 0; p -= LANES) {
            if (!rewrite_at(p)) return;
        }
    } else {  // short: cheaper rewritten whole
        for (Py_ssize_t p = whole - LANES; p > 0; p -= LANES) rewrite_at(p);
    }
    if (whole > 0) {  // the first vector: nothing before it, so -inf (column -1) comes in
        Values here;
        Columns here_columns;
        std::memcpy(&here, list, sizeof here);
        std::memcpy(&here_columns, columns, sizeof here_columns);
        typedef std::conditional_t<sizeof(Real) == 8, std::int64_t, std::int32_t> Lane;
        typedef Lane ValueLanes __attribute__((vector_size(LANES * sizeof(Lane))));
        ValueLanes value_lanes;
        Columns column_lanes, no_column;
        Values none;
        for (int l = 0; l < LANES; ++l) {  // lane l takes lane l - 1; lane 0 the filler's
            value_lanes[l] = l == 0 ? LANES : l - 1;
            column_lanes[l] = l == 0 ? LANES : l - 1;
            none[l] = -HUGE_VAL;
            no_column[l] = -1;
        }
        const Values before = __builtin_shuffle(here, none, value_lanes);
        const Columns before_columns = __builtin_shuffle(here_columns, no_column, column_lanes);
        rewrite(0, here, before, here_columns, before_columns);
    }
}

// Merge one query's distances to a chunk into its sorted k nearest. Points
// come in column order and only a strictly smaller distance displaces the
// k-th, so of equal distances the lower column wins, as a stable sort has it.
// Most distances lose to the k-th: a block of eight is compared at once into
// a bit mask (vector comparisons), and only the winners are visited.
//
// Euclidean chunks hold squared sums. Two different squared sums can have
// the same square root, so the order is decided on the root (the distance
// itself, as SciPy gives it): the mask uses a bound a little above the
// square of the k-th, and each of the few winners is rooted and compared
// exactly.
//
// Sorensen's bounded chunks hold numerators: the mask compares each with the
// k-th, times the slack, times its sums (see sorensen_slack), and each pair
// that passes has its denominator summed exactly before it is compared.
template <int M, typename Real>
ALWAYS_INLINE void keep_nearest(const Search<Real>& s, Py_ssize_t i, Py_ssize_t start,
                                Py_ssize_t width, const Real* __restrict distance,
                                const Real* __restrict point_sums) {
    constexpr bool SQUARED = M == EUCLIDEAN;
    constexpr bool BOUNDED = M == SORENSEN_BOUNDED;
    constexpr Py_ssize_t SCREEN = 8;
    constexpr Real SLACK = 1 + 4 * std::numeric_limits<Real>::epsilon();
    const Real bound_slack = BOUNDED ? sorensen_slack<Real>(s.features) : Real(1);
    const Py_ssize_t k = s.k;
    Real* row_best = s.best + i * k;
    Py_ssize_t* row_columns = s.columns + i * k;
    const Py_ssize_t own_group = s.query_groups ? s.query_groups[i] : 0;
    Real kth = row_best[k - 1];
    const Real* q = s.queries + i * s.features;
    Real query_sum = 0;
    if constexpr (BOUNDED) {
        for (Py_ssize_t f = 0; f < s.features; ++f) query_sum += q[f];
    }
    auto screen_for = [bound_slack](Real kth_distance) ALWAYS_INLINE_LAMBDA {
        if constexpr (SQUARED) return kth_distance * kth_distance * SLACK;
        // Finite: an empty list's infinite k-th times a zero sum would be NaN.
        if constexpr (BOUNDED) return std::min(kth_distance * bound_slack, std::numeric_limits<Real>::max());
        return kth_distance;
    };
    Real screen = screen_for(kth);
    auto may_win = [&](Py_ssize_t j) ALWAYS_INLINE_LAMBDA {
        if constexpr (BOUNDED) return distance[j] <= screen * (query_sum + point_sums[j]);
        return distance[j] < screen;
    };
    auto exact = [&](Py_ssize_t j) ALWAYS_INLINE_LAMBDA {
        if constexpr (SQUARED) return std::sqrt(distance[j]);
        if constexpr (BOUNDED) {  // the plain kernel's denominator, summed in its order
            const Real* p = s.points_t + start + j;
            Real sum = 0;
            for (Py_ssize_t f = 0; f < s.features; ++f) sum = sum + std::fabs(q[f] + p[f * s.n_points]);
            return sum != 0 ? distance[j] / sum : Real(0);
        }
        return distance[j];
    };
    auto consider = [&](Py_ssize_t j) ALWAYS_INLINE_LAMBDA {
        if (BOUNDED && !may_win(j)) return;  // the tail, which no mask has screened
        const Real d = exact(j);
        if (!(d < kth)) return;
        if (s.query_groups && s.point_groups[start + j] == own_group) return;
        insert_nearest(row_best, row_columns, k, d, start + j);
        kth = row_best[k - 1];
        screen = screen_for(kth);
    };
    auto visit_block = [&](Py_ssize_t at) ALWAYS_INLINE_LAMBDA {
        unsigned passed = 0;  // bit l: distance at + l may beat the k-th
        for (Py_ssize_t l = 0; l < SCREEN; ++l) passed |= unsigned(may_win(at + l)) << l;
        while (passed != 0) {
            consider(at + __builtin_ctz(passed));
            passed &= passed - 1;
        }
    };
    Py_ssize_t j = 0;
    for (; j + WIDE <= width; j += WIDE) {
        if (BOUNDED ? !any_within(distance + j, point_sums + j, query_sum, screen)
                    : !any_below(distance + j, screen))
            continue;
        for (Py_ssize_t at = j; at < j + WIDE; at += SCREEN) visit_block(at);
    }
    for (; j + SCREEN <= width; j += SCREEN) visit_block(j);
    for (; j < width; ++j) consider(j);
}

// Queries first..last-1 against the points start..start+width-1.
template <int M, typename Real>
ALWAYS_INLINE void search_chunk(const Search<Real>& s, Py_ssize_t first, Py_ssize_t last,
                                Py_ssize_t start, Py_ssize_t width,
                                Real (*__restrict distance)[CHUNK], Real (*__restrict scratch)[CHUNK],
                                const Real* __restrict point_sums) {
    Py_ssize_t i = first;
    for (; i + QUERIES_PER_TILE <= last; i += QUERIES_PER_TILE) {
        tile_distances<M, QUERIES_PER_TILE>(s, i, start, width, distance, scratch);
        for (int b = 0; b < QUERIES_PER_TILE; ++b)
            keep_nearest<M>(s, i + b, start, width, distance[b], point_sums);
    }
    for (; i < last; ++i) {
        tile_distances<M, 1>(s, i, start, width, distance, scratch);
        keep_nearest<M>(s, i, start, width, distance[0], point_sums);
    }
}

// Queries in blocks of QUERY_BLOCK, each block against every chunk of points in
// turn, so that a block's lists of nearest stay in the core's own cache while
// the points stream past in order (which the prefetcher keeps up with). With
// every query against each chunk instead, each chunk went through all the
// lists again: at bench M's fold (4,000 queries, k 50 plus the screen's
// margin) 2.8 MB of them, more than a core's second-level cache. Each query
// still meets the chunks in column order, so its list and ties are the same.
constexpr Py_ssize_t QUERY_BLOCK = QUERIES_PER_TILE * 128;

template <int M, typename Real>
ALWAYS_INLINE void search_metric(const Search<Real>& s) {
    alignas(64) Real distance[QUERIES_PER_TILE][CHUNK];
    alignas(64) Real scratch[QUERIES_PER_TILE][CHUNK];
    alignas(64) Real point_sums[CHUNK];
    for (Py_ssize_t first = 0; first < s.n_queries; first += QUERY_BLOCK) {
        const Py_ssize_t last = std::min(first + QUERY_BLOCK, s.n_queries);
        for (Py_ssize_t start = 0; start < s.n_points; start += CHUNK) {
            const Py_ssize_t width = s.n_points - start < CHUNK ? s.n_points - start : CHUNK;
            if constexpr (M == SORENSEN_BOUNDED) {
                if (start < s.k) {  // lists not yet full: nearly every pair enters, so sum both
                    search_chunk<SORENSEN>(s, first, last, start, width, distance, scratch,
                                           point_sums);
                    continue;
                }
                // each point's sum, in feature order
                std::memset(point_sums, 0, sizeof(Real) * width);
                for (Py_ssize_t f = 0; f < s.features; ++f) {
                    const Real* __restrict p = s.points_t + f * s.n_points + start;
                    for (Py_ssize_t j = 0; j < width; ++j) point_sums[j] += p[j];
                }
            }
            search_chunk<M>(s, first, last, start, width, distance, scratch, point_sums);
        }
    }
}

template <typename Real>
ALWAYS_INLINE void search_any(int metric, const Search<Real>& s) {
    for (Py_ssize_t n = 0; n < s.n_queries * s.k; ++n) {
        s.best[n] = HUGE_VAL;
        s.columns[n] = -1;
    }
    switch (metric) {
        case EUCLIDEAN: search_metric<EUCLIDEAN>(s); break;
        case MANHATTAN: search_metric<MANHATTAN>(s); break;
        case CHEBYSHEV: search_metric<CHEBYSHEV>(s); break;
        case COSINE: search_metric<COSINE>(s); break;
        case MINKOWSKI: search_metric<MINKOWSKI>(s); break;
        case SQUARED_SCREEN: search_metric<SQUARED_SCREEN>(s); break;
        case MINKOWSKI_SCREEN: search_metric<MINKOWSKI_SCREEN>(s); break;
        default:
            if (all_boundable(s)) {
                search_metric<SORENSEN_BOUNDED>(s);
            } else {
                search_metric<SORENSEN>(s);
            }
            break;
    }
}

// ---------------------------------------------------------- screens from a product

// The m smallest of rows of scores, by (value, column): a value is
// query_terms[i] + point_terms[j] + scale * scores[i][j] (a squared Euclidean
// distance from a matrix product q . p, or minus a cosine similarity), and
// columns and best (rows x m) carry each row's sorted list in and out, so a
// caller can feed the points in blocks; `offset` is the first block column's
// index. m is k plus a margin, so a sorted insertion per winner (as `nearest`
// does for k) would cost more than the scan: a row is scanned once against a
// bound on its m-th smallest value, the few below it are collected, and those
// are sorted (or, with a full list carried in, sorted and merged into it).
template <typename Real>
struct Selection {
    const Real* scores;  // rows x width
    Py_ssize_t rows;
    Py_ssize_t width;
    const Real* query_terms;  // rows
    const Real* point_terms;  // width
    Real scale;
    Py_ssize_t offset;
    const Py_ssize_t* query_groups;  // rows, or nullptr: no groups
    const Py_ssize_t* point_groups;  // indexed by offset + column
    Py_ssize_t* columns;
    Real* best;
    Py_ssize_t m;
};

template <typename Real>
struct Found {
    Real distance;
    Py_ssize_t column;
};

struct Before {  // (distance, column) order, NaN last; an object, so the sorts inline it
    template <typename Real>
    ALWAYS_INLINE bool operator()(const Found<Real>& a, const Found<Real>& b) const {
        const bool a_nan = a.distance != a.distance, b_nan = b.distance != b.distance;
        if (a_nan != b_nan) return b_nan;
        if (a.distance != b.distance) return a.distance < b.distance;
        return a.column < b.column;
    }
};

// Lanes of the running minima that bound a row's m smallest: 2 m, in whole vectors.
ALWAYS_INLINE Py_ssize_t select_lanes(Py_ssize_t m) { return (2 * m + 7) / 8 * 8; }

// The buffer a call needs: a row's winners (at most the block and the list it
// carries in) and room to merge them with that list.
ALWAYS_INLINE Py_ssize_t select_room(Py_ssize_t width, Py_ssize_t m) { return width + 2 * m; }

template <typename Real>
struct Row {  // one row of a product block, and how its values are made
    const Real* __restrict scores;
    const Real* __restrict point_terms;
    Real query_term;
    Real scale;
    const Py_ssize_t* __restrict groups;  // the block's points' groups, when grouped
    Py_ssize_t own_group;
};

template <bool GROUPED, typename Real>
ALWAYS_INLINE Real value_at(const Row<Real>& r, Py_ssize_t j) {
    constexpr Real INF = std::numeric_limits<Real>::infinity();
    const Real v = (r.query_term + r.point_terms[j]) + r.scale * r.scores[j];
    const Real kept = v == v ? v : INF;  // a NaN never wins
    if constexpr (GROUPED) return r.groups[j] == r.own_group ? INF : kept;
    return kept;
}

template <bool GROUPED, typename Real>
ALWAYS_INLINE void fill_values(const Row<Real>& r, Real* __restrict values, Py_ssize_t width) {
    for (Py_ssize_t j = 0; j < width; ++j) values[j] = value_at<GROUPED>(r, j);
}

template <bool GROUPED, typename Real>
ALWAYS_INLINE void fill_minima(const Row<Real>& r, Real* __restrict values, Py_ssize_t width,
                               Real* __restrict minima, Py_ssize_t lanes) {
    for (Py_ssize_t l = 0; l < lanes; ++l) minima[l] = std::numeric_limits<Real>::infinity();
    const Py_ssize_t whole = width / lanes * lanes;
    for (Py_ssize_t j = 0; j < whole; j += lanes) {
        for (Py_ssize_t l = 0; l < lanes; ++l) {
            const Real v = value_at<GROUPED>(r, j + l);
            values[j + l] = v;
            minima[l] = v < minima[l] ? v : minima[l];
        }
    }
    for (Py_ssize_t j = whole; j < width; ++j) values[j] = value_at<GROUPED>(r, j);
}

template <typename Real>
ALWAYS_INLINE void select_any(const Selection<Real>& t, Real* values, Found<Real>* buffer) {
    const Py_ssize_t m = t.m, width = t.width, lanes = select_lanes(m);
    Real* __restrict minima = values + width;
    const Real* __restrict point_terms = t.point_terms;
    Found<Real>* merged = buffer + width + m;
    constexpr Real INF = std::numeric_limits<Real>::infinity();
    for (Py_ssize_t i = 0; i < t.rows; ++i) {
        const Real* __restrict row = t.scores + i * width;
        const Real query_term = t.query_terms[i];
        Py_ssize_t* row_columns = t.columns + i * m;
        Real* row_best = t.best + i * m;
        Py_ssize_t carried = 0;  // the list carried in, sorted
        for (Py_ssize_t c = 0; c < m; ++c) {
            if (row_columns[c] >= 0) buffer[carried++] = {row_best[c], row_columns[c]};
        }
        // The row's values: a point of the query's own group, or a NaN, never wins.
        const Py_ssize_t own_group = t.query_groups ? t.query_groups[i] : 0;
        const Py_ssize_t* groups = t.query_groups ? t.point_groups + t.offset : nullptr;
        const Row<Real> r{row, point_terms, query_term, t.scale, groups, own_group};
        Real bound = INF;
        if (carried == m) {
            // Points come in column order, so one equal to the m-th kept loses to it.
            bound = buffer[m - 1].distance;
            groups ? fill_values<true>(r, values, width) : fill_values<false>(r, values, width);
        } else if (width >= 2 * lanes) {
            // A bound on the m-th smallest, in the same pass: the m-th smallest of
            // `lanes` minima, each over a strided share of the row, is at least as
            // large as m of the values. For random values about 1.4 m pass it, so
            // one scan finds the m smallest without a sorted insertion per winner.
            groups ? fill_minima<true>(r, values, width, minima, lanes)
                   : fill_minima<false>(r, values, width, minima, lanes);
            std::nth_element(minima, minima + m - 1, minima + lanes);
            bound = std::nextafter(minima[m - 1], INF);  // below it: at most minima[m - 1]
            if (carried > 0) bound = INF;  // a short list (too few points so far) takes all
        } else {
            groups ? fill_values<true>(r, values, width) : fill_values<false>(r, values, width);
        }
        Py_ssize_t n = carried;
        const Py_ssize_t first = t.offset;
        auto visit_block = [&](Py_ssize_t at) ALWAYS_INLINE_LAMBDA {
            unsigned passed = 0;  // bit l: value at + l is below the bound
            for (Py_ssize_t l = 0; l < 8; ++l) passed |= unsigned(values[at + l] < bound) << l;
            while (passed != 0) {
                const Py_ssize_t l = at + __builtin_ctz(passed);
                buffer[n++] = {values[l], first + l};
                passed &= passed - 1;
            }
        };
        Py_ssize_t j = 0;
        for (; j + WIDE <= width; j += WIDE) {
            if (!any_below(values + j, bound)) continue;
            for (Py_ssize_t at = j; at < j + WIDE; at += 8) visit_block(at);
        }
        for (; j + 8 <= width; j += 8) visit_block(j);
        for (; j < width; ++j) {
            if (values[j] < bound) buffer[n++] = {values[j], first + j};
        }
        const Found<Real>* kept = buffer;
        if (carried == m) {  // a full list and a few winners: sort those, merge the two
            std::sort(buffer + m, buffer + n, Before{});
            Py_ssize_t a = 0, b = m;
            for (Py_ssize_t c = 0; c < m; ++c)
                merged[c] = b < n && Before{}(buffer[b], buffer[a]) ? buffer[b++] : buffer[a++];
            kept = merged;
        } else {
            if (n > m) std::nth_element(buffer, buffer + m - 1, buffer + n, Before{});
            n = n < m ? n : m;
            std::sort(buffer, buffer + n, Before{});
        }
        for (Py_ssize_t c = 0; c < m; ++c) {
            row_columns[c] = c < n ? kept[c].column : -1;
            row_best[c] = c < n ? kept[c].distance : INF;
        }
    }
}

// Exact distances from each query to its candidates, summed feature after
// feature as the exact kernel sums them (so to the last bit its distances),
// then its k nearest by (distance, column). Candidates are summed a vector of
// them at a time (refine_lanes), the rest four side by side, which hides the
// latency of each in-order sum.
template <typename Real>
struct Refinement {
    const Real* queries;  // n_queries x features
    const Real* points;   // n_points x features
    Py_ssize_t n_queries;
    Py_ssize_t features;
    const Py_ssize_t* candidates;  // n_queries x m, -1 for none
    Py_ssize_t m;
    Py_ssize_t k;
    Py_ssize_t* columns;  // n_queries x k, out
    Real* best;
    Real power;
};

template <int M, typename Real>
ALWAYS_INLINE Real finished(Real sum, Real root) {  // the exact kernel's last step
    if constexpr (M == MANHATTAN || M == CHEBYSHEV) {
        return sum;
    } else if constexpr (M == EUCLIDEAN) {
        return std::sqrt(sum);
    } else if constexpr (M == COSINE) {
        const Real d = Real(1) - sum;
        return d < 0 ? Real(0) : (d > 2 ? Real(2) : d);
    } else {
        return std::pow(sum, root);
    }
}

// One vector of candidates at a time (8 in float32, 4 in float64): each
// candidate's next features are loaded as a vector, the block is transposed in
// registers, and then every lane adds its candidate's terms one feature after
// another, as the scalar sum does, so the sums are the same to the bit.
template <typename Real>
struct Lanes;

template <>
struct Lanes<float> {
    static constexpr int N = 8;
    typedef float Vector __attribute__((vector_size(32)));
    typedef float Unaligned __attribute__((vector_size(32), aligned(4), may_alias));
    typedef std::int32_t Mask __attribute__((vector_size(32)));
    static ALWAYS_INLINE void transpose(Vector* v) {
        Vector t[8], u[8];
        for (int a = 0; a < 8; a += 2) {
            t[a] = __builtin_shuffle(v[a], v[a + 1], Mask{0, 8, 1, 9, 4, 12, 5, 13});
            t[a + 1] = __builtin_shuffle(v[a], v[a + 1], Mask{2, 10, 3, 11, 6, 14, 7, 15});
        }
        for (int a = 0; a < 8; a += 4) {
            for (int b = 0; b < 2; ++b) {
                u[a + 2 * b] = __builtin_shuffle(t[a + b], t[a + b + 2], Mask{0, 1, 8, 9, 4, 5, 12, 13});
                u[a + 2 * b + 1] =
                    __builtin_shuffle(t[a + b], t[a + b + 2], Mask{2, 3, 10, 11, 6, 7, 14, 15});
            }
        }
        for (int a = 0; a < 4; ++a) {
            v[a] = __builtin_shuffle(u[a], u[a + 4], Mask{0, 1, 2, 3, 8, 9, 10, 11});
            v[a + 4] = __builtin_shuffle(u[a], u[a + 4], Mask{4, 5, 6, 7, 12, 13, 14, 15});
        }
    }
};

template <>
struct Lanes<double> {
    static constexpr int N = 4;
    typedef double Vector __attribute__((vector_size(32)));
    typedef double Unaligned __attribute__((vector_size(32), aligned(8), may_alias));
    typedef std::int64_t Mask __attribute__((vector_size(32)));
    static ALWAYS_INLINE void transpose(Vector* v) {
        Vector t[4];
        for (int a = 0; a < 4; a += 2) {
            t[a] = __builtin_shuffle(v[a], v[a + 1], Mask{0, 4, 2, 6});
            t[a + 1] = __builtin_shuffle(v[a], v[a + 1], Mask{1, 5, 3, 7});
        }
        v[0] = __builtin_shuffle(t[0], t[2], Mask{0, 1, 4, 5});
        v[1] = __builtin_shuffle(t[1], t[3], Mask{0, 1, 4, 5});
        v[2] = __builtin_shuffle(t[0], t[2], Mask{2, 3, 6, 7});
        v[3] = __builtin_shuffle(t[1], t[3], Mask{2, 3, 6, 7});
    }
};

template <int M, typename Real>
ALWAYS_INLINE void refine_lanes(const Refinement<Real>& r, const Real* __restrict q, Found<Real>* found) {
    typedef Lanes<Real> L;
    typedef typename L::Vector Vector;
    constexpr int N = L::N;
    const Py_ssize_t features = r.features;
    const Real* p[N];
    for (int c = 0; c < N; ++c) p[c] = r.points + found[c].column * features;
    Vector sum = {};
    Py_ssize_t f = 0;
    for (; f + N <= features; f += N) {
        Vector v[N];
#pragma GCC unroll 8
        for (int c = 0; c < N; ++c) v[c] = *reinterpret_cast<const typename L::Unaligned*>(p[c] + f);
        L::transpose(v);  // v[j][c]: candidate c's feature f + j
#pragma GCC unroll 8
        for (int j = 0; j < N; ++j) {
            const Real qf = q[f + j];
            if constexpr (M == COSINE) {
                sum = sum + qf * v[j];
            } else {
                const Vector d = qf - v[j];
                sum = sum + d * d;
            }
        }
    }
    for (int c = 0; c < N; ++c) {
        Real total = sum[c];
        for (Py_ssize_t g = f; g < features; ++g) total = total + term<M>(q[g], p[c][g], r.power);
        found[c].distance = finished<M>(total, Real(1) / r.power);
    }
}

// A running distance and one more feature's term: summed, or for Chebyshev the larger.
template <int M, typename Real>
ALWAYS_INLINE Real with_term(Real so_far, Real q, Real p, Real power) {
    if constexpr (M == CHEBYSHEV) return larger(std::fabs(q - p), so_far);
    return so_far + term<M>(q, p, power);
}

template <int M, typename Real>
ALWAYS_INLINE void refine_metric(const Refinement<Real>& r, Found<Real>* found) {
    const Py_ssize_t features = r.features;
    const Real power = r.power, root = Real(1) / r.power;
    for (Py_ssize_t i = 0; i < r.n_queries; ++i) {
        const Real* __restrict q = r.queries + i * features;
        const Py_ssize_t* row_candidates = r.candidates + i * r.m;
        Py_ssize_t n = 0;
        for (Py_ssize_t c = 0; c < r.m; ++c) {
            if (row_candidates[c] >= 0) found[n++].column = row_candidates[c];
        }
        Py_ssize_t c = 0;
        if constexpr (M == EUCLIDEAN || M == COSINE) {
            for (; c + Lanes<Real>::N <= n; c += Lanes<Real>::N) refine_lanes<M>(r, q, found + c);
        }
        for (; c + 4 <= n; c += 4) {
            const Real* __restrict p0 = r.points + found[c].column * features;
            const Real* __restrict p1 = r.points + found[c + 1].column * features;
            const Real* __restrict p2 = r.points + found[c + 2].column * features;
            const Real* __restrict p3 = r.points + found[c + 3].column * features;
            Real s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (Py_ssize_t f = 0; f < features; ++f) {
                const Real qf = q[f];
                s0 = with_term<M>(s0, qf, p0[f], power);
                s1 = with_term<M>(s1, qf, p1[f], power);
                s2 = with_term<M>(s2, qf, p2[f], power);
                s3 = with_term<M>(s3, qf, p3[f], power);
            }
            found[c].distance = finished<M>(s0, root);
            found[c + 1].distance = finished<M>(s1, root);
            found[c + 2].distance = finished<M>(s2, root);
            found[c + 3].distance = finished<M>(s3, root);
        }
        for (; c < n; ++c) {
            const Real* __restrict p0 = r.points + found[c].column * features;
            Real s0 = 0;
            for (Py_ssize_t f = 0; f < features; ++f) s0 = with_term<M>(s0, q[f], p0[f], power);
            found[c].distance = finished<M>(s0, root);
        }
        std::sort(found, found + n, Before{});
        for (Py_ssize_t j = 0; j < r.k; ++j) {
            r.columns[i * r.k + j] = j < n ? found[j].column : -1;
            r.best[i * r.k + j] = j < n ? found[j].distance : Real(HUGE_VAL);
        }
    }
}

template <typename Real>
ALWAYS_INLINE void refine_any(int metric, const Refinement<Real>& r, Found<Real>* found) {
    switch (metric) {
        case EUCLIDEAN: refine_metric<EUCLIDEAN>(r, found); break;
        case MANHATTAN: refine_metric<MANHATTAN>(r, found); break;
        case CHEBYSHEV: refine_metric<CHEBYSHEV>(r, found); break;
        case COSINE: refine_metric<COSINE>(r, found); break;
        default: refine_metric<MINKOWSKI>(r, found); break;
    }
}

// The same loops compiled for each instruction set; `search` is chosen once,
// when the module is loaded.
struct Searches {
    void (*double_)(int, const Search<double>&);
    void (*float_)(int, const Search<float>&);
    void (*select_double)(const Selection<double>&, double*, Found<double>*);
    void (*select_float)(const Selection<float>&, float*, Found<float>*);
    void (*refine_double)(int, const Refinement<double>&, Found<double>*);
    void (*refine_float)(int, const Refinement<float>&, Found<float>*);
    const char* name;
};

#define KERNELS(SUFFIX, ATTRIBUTE)                                                               \
    ATTRIBUTE void search_double_##SUFFIX(int metric, const Search<double>& s) {                 \
        search_any(metric, s);                                                                   \
    }                                                                                            \
    ATTRIBUTE void search_float_##SUFFIX(int metric, const Search<float>& s) {                   \
        search_any(metric, s);                                                                   \
    }                                                                                            \
    ATTRIBUTE void select_double_##SUFFIX(const Selection<double>& t, double* values,            \
                                          Found<double>* buffer) {                               \
        select_any(t, values, buffer);                                                           \
    }                                                                                            \
    ATTRIBUTE void select_float_##SUFFIX(const Selection<float>& t, float* values,               \
                                         Found<float>* buffer) {                                 \
        select_any(t, values, buffer);                                                           \
    }                                                                                            \
    ATTRIBUTE void refine_double_##SUFFIX(int metric, const Refinement<double>& r,               \
                                          Found<double>* found) {                                \
        refine_any(metric, r, found);                                                            \
    }                                                                                            \
    ATTRIBUTE void refine_float_##SUFFIX(int metric, const Refinement<float>& r,                 \
                                         Found<float>* found) {                                  \
        refine_any(metric, r, found);                                                            \
    }

KERNELS(baseline, )
constexpr Searches BASELINE{search_double_baseline, search_float_baseline,
                            select_double_baseline, select_float_baseline,
                            refine_double_baseline, refine_float_baseline, "baseline"};

#ifdef HAVE_AVX2
KERNELS(avx2, AVX2)
constexpr Searches WITH_AVX2{search_double_avx2, search_float_avx2, select_double_avx2,
                             select_float_avx2,  refine_double_avx2, refine_float_avx2,
                             "avx2"};
KERNELS(avx512, AVX512)
constexpr Searches WITH_AVX512{search_double_avx512, search_float_avx512, select_double_avx512,
                               select_float_avx512,  refine_double_avx512, refine_float_avx512,
                               "avx512"};
#endif

// The widest copy the processor runs, unless KNN_PIPELINE_VECTOR_ISA names a
// narrower one ("avx2" or "baseline": to test them, or to rule a copy out).
Searches choose_searches() {
#ifdef HAVE_AVX2
    const char* wanted = std::getenv("KNN_PIPELINE_VECTOR_ISA");
    const bool baseline = wanted != nullptr && std::strcmp(wanted, "baseline") == 0;
    const bool at_most_avx2 = baseline || (wanted != nullptr && std::strcmp(wanted, "avx2") == 0);
    __builtin_cpu_init();
    if (!at_most_avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw"))
        return WITH_AVX512;
    if (!baseline && __builtin_cpu_supports("avx2")) return WITH_AVX2;
#endif
    return BASELINE;
}

Searches search = BASELINE;

// ------------------------------------------------------------------ Python

struct Buffer {  // a held Py_buffer, released on every way out
    Py_buffer view{};
    bool held = false;
    ~Buffer() {
        if (held) PyBuffer_Release(&view);
    }
};

// 'f' for float64/float32, 'i' for 8-byte integers, 0 for anything else.
char kind_of(const Py_buffer& view) {
    const char* format = view.format ? view.format : "B";
    if (*format == '@' || *format == '=') ++format;
    if (std::strcmp(format, "d") == 0 || std::strcmp(format, "f") == 0) return 'f';
    if (view.itemsize == sizeof(Py_ssize_t) &&
        (std::strcmp(format, "l") == 0 || std::strcmp(format, "q") == 0 ||
         std::strcmp(format, "n") == 0))
        return 'i';
    return 0;
}

bool take(PyObject* obj, Buffer& buffer, const char* name, int ndim, char kind, bool writable) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, &buffer.view, flags) < 0) return false;
    buffer.held = true;
    if (buffer.view.ndim != ndim || kind_of(buffer.view) != kind) {
        PyErr_Format(PyExc_TypeError, "%s: want a C-contiguous %d-d %s array", name, ndim,
                     kind == 'f' ? "float64 or float32" : "intp");
        return false;
    }
    return true;
}

Py_ssize_t dim(const Buffer& b, int axis) { return b.view.shape[axis]; }

const char NEAREST_DOC[] =
    "nearest(metric, queries, points_t, query_groups, point_groups, columns, best, power=2)\n\n"
    "Fill columns and best (queries x k) with each query's k nearest points, nearest\n"
    "first, ties to the lower column. metric: 0 euclidean, 1 manhattan, 2 chebyshev,\n"
    "3 sorensen, 4 cosine (rows normalised by the caller), 5 minkowski with p = power\n"
    "(at least 1), 6 squared euclidean with fused multiply-adds, unrooted, 7 minkowski\n"
    "sums of an approximate power, unrooted (6 and 7 are screens whose candidates\n"
    "refine recomputes). points_t is features x points, of the queries' dtype\n"
    "(float64 or float32), as is best. Empty groups: none; otherwise a query never takes a point\n"
    "of its own group (columns stay -1 where too few points are left).";

PyObject* nearest(PyObject*, PyObject* args) {
    int metric;
    double power = 2.0;
    PyObject *queries_obj, *points_obj, *qgroups_obj, *pgroups_obj, *columns_obj, *best_obj;
    if (!PyArg_ParseTuple(args, "iOOOOOO|d:nearest", &metric, &queries_obj, &points_obj,
                          &qgroups_obj, &pgroups_obj, &columns_obj, &best_obj, &power))
        return nullptr;
    Buffer queries, points, qgroups, pgroups, columns, best;
    if (!take(queries_obj, queries, "queries", 2, 'f', false) ||
        !take(points_obj, points, "points_t", 2, 'f', false) ||
        !take(qgroups_obj, qgroups, "query_groups", 1, 'i', false) ||
        !take(pgroups_obj, pgroups, "point_groups", 1, 'i', false) ||
        !take(columns_obj, columns, "columns", 2, 'i', true) ||
        !take(best_obj, best, "best", 2, 'f', true))
        return nullptr;
    const Py_ssize_t itemsize = points.view.itemsize;
    const Py_ssize_t n_queries = dim(queries, 0), features = dim(queries, 1);
    const Py_ssize_t n_points = dim(points, 1), k = dim(columns, 1);
    const bool grouped = dim(qgroups, 0) > 0;
    if (metric < EUCLIDEAN || metric > MINKOWSKI_SCREEN) {
        PyErr_Format(PyExc_ValueError, "unknown metric code %d", metric);
        return nullptr;
    }
    if (!(power >= 1.0) || !std::isfinite(power)) {
        PyErr_Format(PyExc_ValueError, "minkowski power must be a finite number >= 1, got %g", power);
        return nullptr;
    }
    if (queries.view.itemsize != itemsize || best.view.itemsize != itemsize) {
        PyErr_SetString(PyExc_TypeError, "queries, points_t and best must share one dtype");
        return nullptr;
    }
    if (dim(points, 0) != features || dim(columns, 0) != n_queries || dim(best, 0) != n_queries ||
        dim(best, 1) != k || (grouped && (dim(qgroups, 0) != n_queries ||
                                          dim(pgroups, 0) != n_points))) {
        PyErr_SetString(PyExc_ValueError, "shapes of the arrays do not match");
        return nullptr;
    }
    if (k < 1 || k > n_points) {
        PyErr_Format(PyExc_ValueError, "cannot take %zd neighbours from %zd points", k, n_points);
        return nullptr;
    }
    const auto* query_groups = grouped ? static_cast<const Py_ssize_t*>(qgroups.view.buf) : nullptr;
    const auto* point_groups = grouped ? static_cast<const Py_ssize_t*>(pgroups.view.buf) : nullptr;
    auto* out_columns = static_cast<Py_ssize_t*>(columns.view.buf);
    Py_BEGIN_ALLOW_THREADS
    if (itemsize == sizeof(double)) {
        Search<double> s{static_cast<const double*>(queries.view.buf),
                         static_cast<const double*>(points.view.buf),
                         n_queries, n_points, features, k, query_groups, point_groups,
                         out_columns, static_cast<double*>(best.view.buf), power};
        search.double_(metric, s);
    } else {
        Search<float> s{static_cast<const float*>(queries.view.buf),
                        static_cast<const float*>(points.view.buf),
                        n_queries, n_points, features, k, query_groups, point_groups,
                        out_columns, static_cast<float*>(best.view.buf),
                        static_cast<float>(power)};
        search.float_(metric, s);
    }
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

const char REFINE_DOC[] =
    "refine(queries, points, candidates, columns, best, metric=0, power=2)\n\n"
    "The exact k nearest among each query's candidates: distances summed feature\n"
    "after feature, in order, as the exact kernel (and SciPy) sums them, ordered by\n"
    "distance, ties to the lower column. metric: 0 euclidean, 1 manhattan, 2 chebyshev\n"
    "(the largest term), 4 cosine (rows normalised by the caller) or 5 minkowski\n"
    "with p = power. queries (queries x\n"
    "features), points (points x features, row-major) and best share one dtype,\n"
    "float64 or float32; candidates (queries x m) holds point columns, -1 for none;\n"
    "columns and best (queries x k, k <= m) are filled.";

PyObject* refine(PyObject*, PyObject* args) {
    PyObject *queries_obj, *points_obj, *candidates_obj, *columns_obj, *best_obj;
    int metric = EUCLIDEAN;
    double power = 2.0;
    if (!PyArg_ParseTuple(args, "OOOOO|id:refine", &queries_obj, &points_obj, &candidates_obj,
                          &columns_obj, &best_obj, &metric, &power))
        return nullptr;
    Buffer queries, points, candidates, columns, best;
    if (!take(queries_obj, queries, "queries", 2, 'f', false) ||
        !take(points_obj, points, "points", 2, 'f', false) ||
        !take(candidates_obj, candidates, "candidates", 2, 'i', false) ||
        !take(columns_obj, columns, "columns", 2, 'i', true) ||
        !take(best_obj, best, "best", 2, 'f', true))
        return nullptr;
    if (metric != EUCLIDEAN && metric != MANHATTAN && metric != CHEBYSHEV && metric != COSINE &&
        metric != MINKOWSKI) {
        PyErr_Format(PyExc_ValueError, "refine has no metric code %d", metric);
        return nullptr;
    }
    if (!(power >= 1.0) || !std::isfinite(power)) {
        PyErr_Format(PyExc_ValueError, "minkowski power must be a finite number >= 1, got %g", power);
        return nullptr;
    }
    const Py_ssize_t itemsize = queries.view.itemsize;
    if (points.view.itemsize != itemsize || best.view.itemsize != itemsize) {
        PyErr_SetString(PyExc_TypeError, "queries, points and best must share one dtype");
        return nullptr;
    }
    const Py_ssize_t n_queries = dim(queries, 0), features = dim(queries, 1);
    const Py_ssize_t n_points = dim(points, 0), m = dim(candidates, 1), k = dim(columns, 1);
    if (dim(points, 1) != features || dim(candidates, 0) != n_queries ||
        dim(columns, 0) != n_queries || dim(best, 0) != n_queries || dim(best, 1) != k || k > m) {
        PyErr_SetString(PyExc_ValueError, "shapes of the arrays do not match");
        return nullptr;
    }
    const auto* candidate = static_cast<const Py_ssize_t*>(candidates.view.buf);
    for (Py_ssize_t n = 0; n < n_queries * m; ++n) {
        if (candidate[n] >= n_points) {
            PyErr_SetString(PyExc_ValueError, "a candidate column is out of range");
            return nullptr;
        }
    }
    void* found = std::malloc(m * sizeof(Found<double>) + 1);
    if (found == nullptr) return PyErr_NoMemory();
    auto* out_columns = static_cast<Py_ssize_t*>(columns.view.buf);
    Py_BEGIN_ALLOW_THREADS
    if (itemsize == sizeof(double)) {
        const Refinement<double> r{static_cast<const double*>(queries.view.buf),
                                   static_cast<const double*>(points.view.buf),
                                   n_queries, features, candidate, m, k, out_columns,
                                   static_cast<double*>(best.view.buf), power};
        search.refine_double(metric, r, static_cast<Found<double>*>(found));
    } else {
        const Refinement<float> r{static_cast<const float*>(queries.view.buf),
                                  static_cast<const float*>(points.view.buf),
                                  n_queries, features, candidate, m, k, out_columns,
                                  static_cast<float*>(best.view.buf), static_cast<float>(power)};
        search.refine_float(metric, r, static_cast<Found<float>*>(found));
    }
    Py_END_ALLOW_THREADS
    std::free(found);
    Py_RETURN_NONE;
}

const char SELECT_DOC[] =
    "select(scores, query_terms, point_terms, scale, offset, query_groups, point_groups,\n"
    "       columns, best)\n\n"
    "Merge into columns and best (rows x m, sorted, carried from call to call; start\n"
    "with -1 and inf) each row's m smallest query_terms[i] + point_terms[j] + scale *\n"
    "scores[i, j], ties to the lower column, as nearest keeps its k nearest. scores\n"
    "(rows x width) is a block of a matrix product whose first column is point\n"
    "`offset`, blocks in column order; query_terms (rows), point_terms (width) and\n"
    "best share its dtype, float64 or float32. NaN values never win. Empty groups:\n"
    "none; otherwise query_groups (rows) and point_groups (every point) skip a row's\n"
    "own group.";

PyObject* select_smallest(PyObject*, PyObject* args) {
    PyObject *scores_obj, *qterms_obj, *pterms_obj, *qgroups_obj, *pgroups_obj, *columns_obj,
        *best_obj;
    double scale;
    Py_ssize_t offset;
    if (!PyArg_ParseTuple(args, "OOOdnOOOO:select", &scores_obj, &qterms_obj, &pterms_obj,
                          &scale, &offset, &qgroups_obj, &pgroups_obj, &columns_obj, &best_obj))
        return nullptr;
    Buffer scores, qterms, pterms, qgroups, pgroups, columns, best;
    if (!take(scores_obj, scores, "scores", 2, 'f', false) ||
        !take(qterms_obj, qterms, "query_terms", 1, 'f', false) ||
        !take(pterms_obj, pterms, "point_terms", 1, 'f', false) ||
        !take(qgroups_obj, qgroups, "query_groups", 1, 'i', false) ||
        !take(pgroups_obj, pgroups, "point_groups", 1, 'i', false) ||
        !take(columns_obj, columns, "columns", 2, 'i', true) ||
        !take(best_obj, best, "best", 2, 'f', true))
        return nullptr;
    const Py_ssize_t itemsize = scores.view.itemsize;
    if (qterms.view.itemsize != itemsize || pterms.view.itemsize != itemsize ||
        best.view.itemsize != itemsize) {
        PyErr_SetString(PyExc_TypeError, "scores, query_terms, point_terms and best must share one dtype");
        return nullptr;
    }
    const Py_ssize_t rows = dim(scores, 0), width = dim(scores, 1), m = dim(columns, 1);
    const bool grouped = dim(qgroups, 0) > 0;
    if (dim(qterms, 0) != rows || dim(pterms, 0) != width || dim(columns, 0) != rows ||
        dim(best, 0) != rows || dim(best, 1) != m || m < 1 ||
        (grouped && (dim(qgroups, 0) != rows || dim(pgroups, 0) < offset + width))) {
        PyErr_SetString(PyExc_ValueError, "shapes of the arrays do not match");
        return nullptr;
    }
    if (offset < 0) {
        PyErr_SetString(PyExc_ValueError, "offset must not be negative");
        return nullptr;
    }
    const auto* query_groups = grouped ? static_cast<const Py_ssize_t*>(qgroups.view.buf) : nullptr;
    const auto* point_groups = grouped ? static_cast<const Py_ssize_t*>(pgroups.view.buf) : nullptr;
    // Per row: its values and minima, and the winners of one scan with the old list.
    void* values = std::malloc((width + select_lanes(m)) * sizeof(double));
    void* buffer = std::malloc(select_room(width, m) * sizeof(Found<double>));
    if (values == nullptr || buffer == nullptr) {
        std::free(values);
        std::free(buffer);
        return PyErr_NoMemory();
    }
    auto* out_columns = static_cast<Py_ssize_t*>(columns.view.buf);
    Py_BEGIN_ALLOW_THREADS
    if (itemsize == sizeof(double)) {
        const Selection<double> t{static_cast<const double*>(scores.view.buf), rows, width,
                                  static_cast<const double*>(qterms.view.buf),
                                  static_cast<const double*>(pterms.view.buf), scale, offset,
                                  query_groups, point_groups, out_columns,
                                  static_cast<double*>(best.view.buf), m};
        search.select_double(t, static_cast<double*>(values), static_cast<Found<double>*>(buffer));
    } else {
        const Selection<float> t{static_cast<const float*>(scores.view.buf), rows, width,
                                 static_cast<const float*>(qterms.view.buf),
                                 static_cast<const float*>(pterms.view.buf),
                                 static_cast<float>(scale), offset, query_groups, point_groups,
                                 out_columns, static_cast<float*>(best.view.buf), m};
        search.select_float(t, static_cast<float*>(values), static_cast<Found<float>*>(buffer));
    }
    Py_END_ALLOW_THREADS
    std::free(values);
    std::free(buffer);
    Py_RETURN_NONE;
}

const char VOTE_DOC[] =
    "vote(columns, weights, ks, winners, votes)\n\n"
    "Add each neighbour's weight (weights: rows x depth, float64) to the sum of its\n"
    "class column columns[row, j] (0 <= column < width), nearest first; after ks[i]\n"
    "neighbours (ks ascending, 1..depth) copy the sums to votes[i, row] (K x rows x\n"
    "width, float64) and their first largest column to winners[i, row] (K x rows).\n"
    "The sums are added one neighbour at a time, nearest first, as scikit-learn's\n"
    "predict_proba adds them.";

PyObject* vote(PyObject*, PyObject* args) {
    PyObject *columns_obj, *weights_obj, *ks_obj, *winners_obj, *votes_obj;
    if (!PyArg_ParseTuple(args, "OOOOO:vote", &columns_obj, &weights_obj, &ks_obj, &winners_obj,
                          &votes_obj))
        return nullptr;
    Buffer columns, weights, ks, winners, votes;
    if (!take(columns_obj, columns, "columns", 2, 'i', false) ||
        !take(weights_obj, weights, "weights", 2, 'f', false) ||
        !take(ks_obj, ks, "ks", 1, 'i', false) ||
        !take(winners_obj, winners, "winners", 2, 'i', true) ||
        !take(votes_obj, votes, "votes", 3, 'f', true))
        return nullptr;
    if (weights.view.itemsize != sizeof(double) || votes.view.itemsize != sizeof(double)) {
        PyErr_SetString(PyExc_TypeError, "weights and votes must be float64");
        return nullptr;
    }
    const Py_ssize_t rows = dim(columns, 0), depth = dim(columns, 1), n_ks = dim(ks, 0);
    const Py_ssize_t width = dim(votes, 2);
    if (dim(weights, 0) != rows || dim(weights, 1) != depth || dim(winners, 0) != n_ks ||
        dim(winners, 1) != rows || dim(votes, 0) != n_ks || dim(votes, 1) != rows || width < 1) {
        PyErr_SetString(PyExc_ValueError, "shapes of the arrays do not match");
        return nullptr;
    }
    const auto* column = static_cast<const Py_ssize_t*>(columns.view.buf);
    const auto* k = static_cast<const Py_ssize_t*>(ks.view.buf);
    for (Py_ssize_t i = 0; i < n_ks; ++i) {
        if (k[i] < 1 || k[i] > depth || (i > 0 && k[i] <= k[i - 1])) {
            PyErr_SetString(PyExc_ValueError, "ks must ascend, each from 1 to the depth");
            return nullptr;
        }
    }
    for (Py_ssize_t n = 0; n < rows * depth; ++n) {
        if (column[n] < 0 || column[n] >= width) {
            PyErr_SetString(PyExc_ValueError, "a class column is out of range");
            return nullptr;
        }
    }
    double* sums = static_cast<double*>(std::malloc(width * sizeof(double)));
    if (sums == nullptr) return PyErr_NoMemory();
    const auto* weight = static_cast<const double*>(weights.view.buf);
    auto* winner = static_cast<Py_ssize_t*>(winners.view.buf);
    auto* out = static_cast<double*>(votes.view.buf);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t row = 0; row < rows; ++row) {
        std::fill(sums, sums + width, 0.0);
        Py_ssize_t next = 0;  // the next k to write
        for (Py_ssize_t j = 0; j < depth && next < n_ks; ++j) {
            sums[column[row * depth + j]] += weight[row * depth + j];
            if (j + 1 != k[next]) continue;
            Py_ssize_t best = 0;
            for (Py_ssize_t c = 1; c < width; ++c) {
                if (sums[c] > sums[best]) best = c;
            }
            winner[next * rows + row] = best;
            std::copy(sums, sums + width, out + (next * rows + row) * width);
            ++next;
        }
    }
    Py_END_ALLOW_THREADS
    std::free(sums);
    Py_RETURN_NONE;
}

const char SCORED_PAIRS_DOC[] =
    "scored_pairs(scores, positive, out)\n\n"
    "For each row of scores (S x rows, float64), write to out[row] (S, float64) the\n"
    "(positive, negative) pairs of its rows whose positive scores the larger, a tie\n"
    "counting half (positive: rows, intp, 1 for a positive row, 0 for a negative): the\n"
    "Mann-Whitney U of the positives, an AUC's numerator. Each row's two sides are\n"
    "radix-sorted on keys that order as np.sort orders (NaN last, tied with NaN;\n"
    "-0.0 equal to 0.0), then merged once: half the time of NumPy's sorts and a merge.";

// An unsigned key that orders as the doubles do in np.sort: negatives' bits flipped,
// the sign bit set on the rest; both zeros alike; every NaN last and equal.
ALWAYS_INLINE std::uint64_t sort_key(double x) {
    constexpr std::uint64_t sign = std::uint64_t(1) << 63;
    if (std::isnan(x)) return ~std::uint64_t(0);
    if (x == 0.0) return sign;
    std::uint64_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    return (bits & sign) ? ~bits : (bits | sign);
}

// Sorts keys[0..n), using scratch[0..n): an LSD radix sort of the top DIGITS x BITS
// bits (their histograms taken in one pass, a digit every key shares skipped), then a
// comparison sort of each run of keys sharing those bits (rare, and short on data that
// is not made of near-equal values; never worse than n log n). `counts` holds
// DIGITS x 2^BITS entries.
template <int DIGITS, int BITS>
void radix_sort(std::uint64_t* keys, std::uint64_t* scratch, Py_ssize_t n, std::uint32_t* counts) {
    constexpr int low = 64 - DIGITS * BITS;
    constexpr std::uint64_t buckets = std::uint64_t(1) << BITS, mask = buckets - 1;
    std::memset(counts, 0, sizeof(std::uint32_t) * buckets * DIGITS);
    for (Py_ssize_t i = 0; i < n; ++i) {
        const std::uint64_t key = keys[i];
        for (int d = 0; d < DIGITS; ++d) ++counts[d * buckets + ((key >> (low + d * BITS)) & mask)];
    }
    std::uint64_t* from = keys;
    std::uint64_t* to = scratch;
    for (int d = 0; d < DIGITS; ++d) {
        const int shift = low + d * BITS;
        std::uint32_t* count = counts + d * buckets;
        if (n == 0 || count[(from[0] >> shift) & mask] == static_cast<std::uint32_t>(n))
            continue;  // every key has this digit: the order stands
        std::uint32_t total = 0;
        for (std::uint64_t b = 0; b < buckets; ++b) {
            const std::uint32_t here = count[b];
            count[b] = total;
            total += here;
        }
        for (Py_ssize_t i = 0; i < n; ++i) {
            const std::uint64_t key = from[i];
            to[count[(key >> shift) & mask]++] = key;
        }
        std::swap(from, to);
    }
    if (from != keys) std::memcpy(keys, from, sizeof(std::uint64_t) * n);
    for (Py_ssize_t start = 0; start < n;) {  // each run of equal top bits, by the rest
        Py_ssize_t end = start + 1;
        while (end < n && (keys[end] >> low) == (keys[start] >> low)) ++end;
        // Runs of equal keys (rows that vote alike) are common and already in order.
        if (end - start > 1 && !std::is_sorted(keys + start, keys + end))
            std::sort(keys + start, keys + end);
        start = end;
    }
}

// Up to this many keys, four 8-bit digits: clearing and summing three histograms
// of 2,048 buckets cost more than sorting a few thousand keys one digit more.
constexpr Py_ssize_t FEW_KEYS = 4096;

void sort_keys(std::uint64_t* keys, std::uint64_t* scratch, Py_ssize_t n, std::uint32_t* counts) {
    if (n <= FEW_KEYS) {
        radix_sort<4, 8>(keys, scratch, n, counts);
    } else {
        radix_sort<3, 11>(keys, scratch, n, counts);
    }
}

PyObject* scored_pairs(PyObject*, PyObject* args) {
    PyObject *scores_obj, *positive_obj, *out_obj;
    if (!PyArg_ParseTuple(args, "OOO:scored_pairs", &scores_obj, &positive_obj, &out_obj))
        return nullptr;
    Buffer scores, positive, out;
    if (!take(scores_obj, scores, "scores", 2, 'f', false) ||
        !take(positive_obj, positive, "positive", 1, 'i', false) ||
        !take(out_obj, out, "out", 1, 'f', true))
        return nullptr;
    if (scores.view.itemsize != sizeof(double) || out.view.itemsize != sizeof(double)) {
        PyErr_SetString(PyExc_TypeError, "scores and out must be float64");
        return nullptr;
    }
    const Py_ssize_t series = dim(scores, 0), rows = dim(scores, 1);
    if (dim(positive, 0) != rows || dim(out, 0) != series) {
        PyErr_SetString(PyExc_ValueError, "shapes of the arrays do not match");
        return nullptr;
    }
    const auto* score = static_cast<const double*>(scores.view.buf);
    const auto* is_positive = static_cast<const Py_ssize_t*>(positive.view.buf);
    auto* result = static_cast<double*>(out.view.buf);
    Py_ssize_t m = 0;
    for (Py_ssize_t r = 0; r < rows; ++r) m += is_positive[r] != 0;
    const Py_ssize_t n = rows - m;
    auto* keys = static_cast<std::uint64_t*>(std::malloc(sizeof(std::uint64_t) * 2 * (rows + 1)));
    // room for either sort_keys histogram set: 3 x 2,048 buckets, or 4 x 256
    auto* counts = static_cast<std::uint32_t*>(std::malloc(sizeof(std::uint32_t) * 2048 * 3));
    if (keys == nullptr || counts == nullptr) {
        std::free(keys);
        std::free(counts);
        return PyErr_NoMemory();
    }
    std::uint64_t* neg = keys;
    std::uint64_t* pos = keys + n;
    std::uint64_t* scratch = keys + rows + 1;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t s = 0; s < series; ++s) {
        const double* row = score + s * rows;
        Py_ssize_t a = 0, b = 0;
        for (Py_ssize_t r = 0; r < rows; ++r) {
            if (is_positive[r] != 0) pos[b++] = sort_key(row[r]);
            else neg[a++] = sort_key(row[r]);
        }
        sort_keys(neg, scratch, n, counts);
        sort_keys(pos, scratch, m, counts);
        Py_ssize_t below = 0, not_above = 0;  // negatives < and <= the current positive
        std::int64_t twice = 0;               // twice the count, so that halves stay exact
        for (Py_ssize_t j = 0; j < m; ++j) {
            while (below < n && neg[below] < pos[j]) ++below;
            if (not_above < below) not_above = below;
            while (not_above < n && neg[not_above] <= pos[j]) ++not_above;
            twice += below + not_above;
        }
        result[s] = 0.5 * static_cast<double>(twice);
    }
    Py_END_ALLOW_THREADS
    std::free(keys);
    std::free(counts);
    Py_RETURN_NONE;
}

const char TALLY_CODES_DOC[] =
    "tally_codes(predictions, truth, classes, hits, predicted, confusion)\n\n"
    "Count each series' predicted codes (predictions: S x rows, intp, each in\n"
    "0..classes-1) against truth (rows, intp): add one to predicted[s, code] for every\n"
    "row, to hits[s, code] where the code is the row's true class, and to\n"
    "confusion[s, truth, code]. hits and predicted (S x classes) and confusion\n"
    "(S x classes x classes) are int64; any of them may be empty (size 0): not counted.";

PyObject* tally_codes(PyObject*, PyObject* args) {
    PyObject *predictions_obj, *truth_obj, *hits_obj, *predicted_obj, *confusion_obj;
    Py_ssize_t classes;
    if (!PyArg_ParseTuple(args, "OOnOOO:tally_codes", &predictions_obj, &truth_obj, &classes,
                          &hits_obj, &predicted_obj, &confusion_obj))
        return nullptr;
    Buffer predictions, truth, hits, predicted, confusion;
    if (!take(predictions_obj, predictions, "predictions", 2, 'i', false) ||
        !take(truth_obj, truth, "truth", 1, 'i', false) ||
        !take(hits_obj, hits, "hits", 2, 'i', true) ||
        !take(predicted_obj, predicted, "predicted", 2, 'i', true) ||
        !take(confusion_obj, confusion, "confusion", 3, 'i', true))
        return nullptr;
    const Py_ssize_t series = dim(predictions, 0), rows = dim(predictions, 1);
    const bool with_hits = hits.view.len > 0, with_predicted = predicted.view.len > 0;
    const bool with_confusion = confusion.view.len > 0;
    auto counts_fit = [&](const Buffer& b) {
        return b.view.len == 0 || (dim(b, 0) == series && dim(b, 1) == classes);
    };
    const bool confusion_fits =
        !with_confusion || (dim(confusion, 0) == series && dim(confusion, 1) == classes &&
                            dim(confusion, 2) == classes);
    if (classes < 1 || dim(truth, 0) != rows || !counts_fit(hits) || !counts_fit(predicted) ||
        !confusion_fits) {
        PyErr_SetString(PyExc_ValueError, "shapes of the arrays do not match");
        return nullptr;
    }
    const auto* code = static_cast<const Py_ssize_t*>(predictions.view.buf);
    const auto* true_code = static_cast<const Py_ssize_t*>(truth.view.buf);
    for (Py_ssize_t n = 0; n < series * rows; ++n) {
        if (code[n] < 0 || code[n] >= classes) {
            PyErr_SetString(PyExc_ValueError, "a predicted code is out of range");
            return nullptr;
        }
    }
    for (Py_ssize_t row = 0; row < rows; ++row) {
        if (true_code[row] < 0 || true_code[row] >= classes) {
            PyErr_SetString(PyExc_ValueError, "a true code is out of range");
            return nullptr;
        }
    }
    auto* hit = static_cast<std::int64_t*>(hits.view.buf);
    auto* count = static_cast<std::int64_t*>(predicted.view.buf);
    auto* cell = static_cast<std::int64_t*>(confusion.view.buf);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t s = 0; s < series; ++s) {
        const Py_ssize_t* own = code + s * rows;
        for (Py_ssize_t row = 0; row < rows; ++row) {
            const Py_ssize_t c = own[row], t = true_code[row];
            if (with_predicted) ++count[s * classes + c];
            if (with_hits && c == t) ++hit[s * classes + c];
            if (with_confusion) ++cell[(s * classes + t) * classes + c];
        }
    }
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

const char COUNT_SHARES_DOC[] =
    "count_shares(shares, ks, truth, columns, histograms)\n\n"
    "Uniform votes' shares (K x rows x width, float64) are counts over k (ks: K,\n"
    "intp): for each k, row and columns[j] (A, intp), add one to histograms[i, j,\n"
    "positive, count] (K x A x 2 x bins, int64), where count is rint(share * k) and\n"
    "positive says whether the row's true class (truth: rows, intp) is columns[j].";

PyObject* count_shares(PyObject*, PyObject* args) {
    PyObject *shares_obj, *ks_obj, *truth_obj, *columns_obj, *histograms_obj;
    if (!PyArg_ParseTuple(args, "OOOOO:count_shares", &shares_obj, &ks_obj, &truth_obj,
                          &columns_obj, &histograms_obj))
        return nullptr;
    Buffer shares, ks, truth, columns, histograms;
    if (!take(shares_obj, shares, "shares", 3, 'f', false) ||
        !take(ks_obj, ks, "ks", 1, 'i', false) ||
        !take(truth_obj, truth, "truth", 1, 'i', false) ||
        !take(columns_obj, columns, "columns", 1, 'i', false) ||
        !take(histograms_obj, histograms, "histograms", 4, 'i', true))
        return nullptr;
    if (shares.view.itemsize != sizeof(double)) {
        PyErr_SetString(PyExc_TypeError, "shares must be float64");
        return nullptr;
    }
    const Py_ssize_t n_ks = dim(shares, 0), rows = dim(shares, 1), width = dim(shares, 2);
    const Py_ssize_t places = dim(columns, 0), bins = dim(histograms, 3);
    if (dim(ks, 0) != n_ks || dim(truth, 0) != rows || dim(histograms, 0) != n_ks ||
        dim(histograms, 1) != places || dim(histograms, 2) != 2) {
        PyErr_SetString(PyExc_ValueError, "shapes of the arrays do not match");
        return nullptr;
    }
    const auto* column = static_cast<const Py_ssize_t*>(columns.view.buf);
    for (Py_ssize_t j = 0; j < places; ++j) {
        if (column[j] < 0 || column[j] >= width) {
            PyErr_SetString(PyExc_ValueError, "a column is out of range");
            return nullptr;
        }
    }
    const auto* share = static_cast<const double*>(shares.view.buf);
    const auto* k = static_cast<const Py_ssize_t*>(ks.view.buf);
    const auto* true_code = static_cast<const Py_ssize_t*>(truth.view.buf);
    auto* histogram = static_cast<std::int64_t*>(histograms.view.buf);
    bool in_range = true;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n_ks && in_range; ++i) {
        const double times = static_cast<double>(k[i]);
        for (Py_ssize_t row = 0; row < rows && in_range; ++row) {
            const double* own = share + (i * rows + row) * width;
            for (Py_ssize_t j = 0; j < places; ++j) {
                const double counted = std::nearbyint(own[column[j]] * times);  // c / k * k is c
                if (!(counted >= 0.0 && counted < static_cast<double>(bins))) {
                    in_range = false;
                    break;
                }
                const Py_ssize_t positive = true_code[row] == column[j] ? 1 : 0;
                ++histogram[((i * places + j) * 2 + positive) * bins +
                            static_cast<Py_ssize_t>(counted)];
            }
        }
    }
    Py_END_ALLOW_THREADS
    if (!in_range) {
        PyErr_SetString(PyExc_ValueError, "a share times its k is not a count in range");
        return nullptr;
    }
    Py_RETURN_NONE;
}

PyMethodDef METHODS[] = {
    {"nearest", nearest, METH_VARARGS, NEAREST_DOC},
    {"refine", refine, METH_VARARGS, REFINE_DOC},
    {"select", select_smallest, METH_VARARGS, SELECT_DOC},
    {"vote", vote, METH_VARARGS, VOTE_DOC},
    {"scored_pairs", scored_pairs, METH_VARARGS, SCORED_PAIRS_DOC},
    {"tally_codes", tally_codes, METH_VARARGS, TALLY_CODES_DOC},
    {"count_shares", count_shares, METH_VARARGS, COUNT_SHARES_DOC},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef MODULE = {
    PyModuleDef_HEAD_INIT,
    "stages._kernels",
    "Distances fused with the selection of the k nearest points (compiled).",
    -1,
    METHODS,
};

}  // namespace

PyMODINIT_FUNC PyInit__kernels() {
    search = choose_searches();
    PyObject* module = PyModule_Create(&MODULE);
    if (module == nullptr) return nullptr;
    if (PyModule_AddIntConstant(module, "CHUNK", CHUNK) < 0 ||
        PyModule_AddIntConstant(module, "QUERY_BLOCK", QUERY_BLOCK) < 0 ||
        PyModule_AddStringConstant(module, "VECTOR_ISA", search.name) < 0) {
        Py_DECREF(module);
        return nullptr;
    }
    return module;
}
