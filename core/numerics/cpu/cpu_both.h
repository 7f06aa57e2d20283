/*
 * cpu_both.h - compiles the template CPU_TEMPLATE (a quoted path) once per
 * element type, float64 then float32 (cpu_real.h says how the template is
 * written), and leaves the type names cleared:
 *   #define CPU_TEMPLATE "core/numerics/cpu/cpu_nmf_t.h"
 *   #include "core/numerics/cpu/cpu_both.h"
 * No include guard: each file includes it once per template.
 */
/* The order below is the point: clang-format must not sort it. */
/* clang-format off */
#define CPU_REAL 64
#include "core/numerics/cpu/cpu_real.h"
#include CPU_TEMPLATE
#undef CPU_REAL
#define CPU_REAL 32
#include "core/numerics/cpu/cpu_real.h"
#include CPU_TEMPLATE
#undef CPU_REAL
#include "core/numerics/cpu/cpu_real.h"
/* clang-format on */
#undef CPU_TEMPLATE
