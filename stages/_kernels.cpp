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
// Compiled ahead of time, so a worker process imports it in a millisecond.
// On x86-64 the loops are compiled twice, for AVX2 and for the baseline, and
// the module picks the one the processor runs when it is loaded. Contraction into fused
// multiply-adds is off (setup.py): it would round differently from SciPy.

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>

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
    } else {
        return std::fabs(q - p);
    }
}

// distance[b][j] for queries first..first+T-1 and points start..start+width-1.
// Sorensen keeps its numerator in `distance` and its denominator in `scratch`.
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
template <bool SQUARED, typename Real>
ALWAYS_INLINE void keep_nearest(const Search<Real>& s, Py_ssize_t i, Py_ssize_t start,
                                Py_ssize_t width, const Real* __restrict distance) {
    constexpr Py_ssize_t SCREEN = 8;
    constexpr Real SLACK = 1 + 4 * std::numeric_limits<Real>::epsilon();
    const Py_ssize_t k = s.k;
    Real* row_best = s.best + i * k;
    Py_ssize_t* row_columns = s.columns + i * k;
    const Py_ssize_t own_group = s.query_groups ? s.query_groups[i] : 0;
    Real kth = row_best[k - 1];
    auto screen_for = [](Real kth_distance) ALWAYS_INLINE_LAMBDA {
        return SQUARED ? kth_distance * kth_distance * SLACK : kth_distance;
    };
    Real screen = screen_for(kth);
    auto consider = [&](Py_ssize_t j) ALWAYS_INLINE_LAMBDA {
        const Real d = SQUARED ? std::sqrt(distance[j]) : distance[j];
        if (!(d < kth)) return;
        if (s.query_groups && s.point_groups[start + j] == own_group) return;
        // Its place: after every kept distance not larger than it (a branch-free
        // count the compiler vectorises), then the larger ones move up by one.
        Py_ssize_t slot = 0;
        for (Py_ssize_t m = 0; m < k - 1; ++m) slot += row_best[m] <= d;
        const Py_ssize_t moved = k - 1 - slot;
        std::memmove(row_best + slot + 1, row_best + slot, moved * sizeof(Real));
        std::memmove(row_columns + slot + 1, row_columns + slot, moved * sizeof(Py_ssize_t));
        row_best[slot] = d;
        row_columns[slot] = start + j;
        kth = row_best[k - 1];
        screen = screen_for(kth);
    };
    auto visit_block = [&](Py_ssize_t at) ALWAYS_INLINE_LAMBDA {
        unsigned passed = 0;  // bit l: distance at + l may beat the k-th
        for (Py_ssize_t l = 0; l < SCREEN; ++l) passed |= unsigned(distance[at + l] < screen) << l;
        while (passed != 0) {
            consider(at + __builtin_ctz(passed));
            passed &= passed - 1;
        }
    };
    Py_ssize_t j = 0;
    for (; j + WIDE <= width; j += WIDE) {
        if (!any_below(distance + j, screen)) continue;
        for (Py_ssize_t at = j; at < j + WIDE; at += SCREEN) visit_block(at);
    }
    for (; j + SCREEN <= width; j += SCREEN) visit_block(j);
    for (; j < width; ++j) consider(j);
}

template <int M, typename Real>
ALWAYS_INLINE void search_metric(const Search<Real>& s) {
    alignas(64) Real distance[QUERIES_PER_TILE][CHUNK];
    alignas(64) Real scratch[QUERIES_PER_TILE][CHUNK];
    for (Py_ssize_t start = 0; start < s.n_points; start += CHUNK) {
        const Py_ssize_t width = s.n_points - start < CHUNK ? s.n_points - start : CHUNK;
        Py_ssize_t i = 0;
        for (; i + QUERIES_PER_TILE <= s.n_queries; i += QUERIES_PER_TILE) {
            tile_distances<M, QUERIES_PER_TILE>(s, i, start, width, distance, scratch);
            for (int b = 0; b < QUERIES_PER_TILE; ++b) keep_nearest<M == EUCLIDEAN>(s, i + b, start, width, distance[b]);
        }
        for (; i < s.n_queries; ++i) {
            tile_distances<M, 1>(s, i, start, width, distance, scratch);
            keep_nearest<M == EUCLIDEAN>(s, i, start, width, distance[0]);
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
        default: search_metric<SORENSEN>(s); break;
    }
}

// The same loops compiled for each instruction set; `search` is chosen once,
// when the module is loaded.
struct Searches {
    void (*double_)(int, const Search<double>&);
    void (*float_)(int, const Search<float>&);
    const char* name;
};

void search_double_baseline(int metric, const Search<double>& s) { search_any(metric, s); }
void search_float_baseline(int metric, const Search<float>& s) { search_any(metric, s); }
constexpr Searches BASELINE{search_double_baseline, search_float_baseline, "baseline"};

#ifdef HAVE_AVX2
AVX2 void search_double_avx2(int metric, const Search<double>& s) { search_any(metric, s); }
AVX2 void search_float_avx2(int metric, const Search<float>& s) { search_any(metric, s); }
constexpr Searches WITH_AVX2{search_double_avx2, search_float_avx2, "avx2"};
#endif

// AVX2 where the processor has it, unless KNN_PIPELINE_VECTOR_ISA=baseline
// asks for the baseline loops (to test them, or to rule the vector code out).
Searches choose_searches() {
#ifdef HAVE_AVX2
    const char* wanted = std::getenv("KNN_PIPELINE_VECTOR_ISA");
    const bool baseline = wanted != nullptr && std::strcmp(wanted, "baseline") == 0;
    __builtin_cpu_init();
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
    "(at least 1), 6 squared euclidean with fused multiply-adds, unrooted (a screen\n"
    "whose candidates refine recomputes). points_t is features x points, of the queries' dtype (float64 or\n"
    "float32), as is best. Empty groups: none; otherwise a query never takes a point\n"
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
    if (metric < EUCLIDEAN || metric > SQUARED_SCREEN) {
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
    "refine(queries, points, candidates, columns, best)\n\n"
    "The exact Euclidean k nearest among each query's candidates: distances summed\n"
    "feature after feature, in order, as the exact kernel and SciPy sum them, ordered\n"
    "by distance, ties to the lower column. queries (queries x features) and points\n"
    "(points x features, row-major) are float64; candidates (queries x m) holds point\n"
    "columns, -1 for none; columns and best (queries x k, k <= m) are filled.";

// One query's exact distances to its candidates, then the k smallest by
// (distance, column). m is small (k plus a margin), so a partial sort is cheap.
void refine_query(const double* query, const double* points, Py_ssize_t features,
                  const Py_ssize_t* candidates, Py_ssize_t m, Py_ssize_t k,
                  Py_ssize_t* columns, double* best, double* roots, Py_ssize_t* order) {
    Py_ssize_t found = 0;
    for (Py_ssize_t c = 0; c < m; ++c) {
        const Py_ssize_t column = candidates[c];
        if (column < 0) continue;
        const double* point = points + column * features;
        double sum = 0;
        for (Py_ssize_t f = 0; f < features; ++f) {
            const double d = query[f] - point[f];
            sum = sum + d * d;
        }
        roots[found] = std::sqrt(sum);
        order[found] = column;
        ++found;
    }
    // insertion sort by (root, column): m is a few dozen at most
    for (Py_ssize_t a = 1; a < found; ++a) {
        const double root = roots[a];
        const Py_ssize_t column = order[a];
        Py_ssize_t b = a;
        while (b > 0 && (roots[b - 1] > root || (roots[b - 1] == root && order[b - 1] > column))) {
            roots[b] = roots[b - 1];
            order[b] = order[b - 1];
            --b;
        }
        roots[b] = root;
        order[b] = column;
    }
    for (Py_ssize_t n = 0; n < k; ++n) {
        columns[n] = n < found ? order[n] : -1;
        best[n] = n < found ? roots[n] : HUGE_VAL;
    }
}

PyObject* refine(PyObject*, PyObject* args) {
    PyObject *queries_obj, *points_obj, *candidates_obj, *columns_obj, *best_obj;
    if (!PyArg_ParseTuple(args, "OOOOO:refine", &queries_obj, &points_obj, &candidates_obj,
                          &columns_obj, &best_obj))
        return nullptr;
    Buffer queries, points, candidates, columns, best;
    if (!take(queries_obj, queries, "queries", 2, 'f', false) ||
        !take(points_obj, points, "points", 2, 'f', false) ||
        !take(candidates_obj, candidates, "candidates", 2, 'i', false) ||
        !take(columns_obj, columns, "columns", 2, 'i', true) ||
        !take(best_obj, best, "best", 2, 'f', true))
        return nullptr;
    if (queries.view.itemsize != sizeof(double) || points.view.itemsize != sizeof(double) ||
        best.view.itemsize != sizeof(double)) {
        PyErr_SetString(PyExc_TypeError, "refine works in float64");
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
    double* roots = static_cast<double*>(std::malloc(m * (sizeof(double) + sizeof(Py_ssize_t)) + 1));
    if (roots == nullptr) return PyErr_NoMemory();
    auto* order = reinterpret_cast<Py_ssize_t*>(roots + m);
    const auto* query = static_cast<const double*>(queries.view.buf);
    const auto* point = static_cast<const double*>(points.view.buf);
    auto* out_columns = static_cast<Py_ssize_t*>(columns.view.buf);
    auto* out_best = static_cast<double*>(best.view.buf);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n_queries; ++i) {
        refine_query(query + i * features, point, features, candidate + i * m, m, k,
                     out_columns + i * k, out_best + i * k, roots, order);
    }
    Py_END_ALLOW_THREADS
    std::free(roots);
    Py_RETURN_NONE;
}

PyMethodDef METHODS[] = {
    {"nearest", nearest, METH_VARARGS, NEAREST_DOC},
    {"refine", refine, METH_VARARGS, REFINE_DOC},
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
        PyModule_AddStringConstant(module, "VECTOR_ISA", search.name) < 0) {
        Py_DECREF(module);
        return nullptr;
    }
    return module;
}
