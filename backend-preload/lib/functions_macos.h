/* The macOS library's function numbering: the n-th FUNCTION line is number n, the `probe` field
 * of the stacks it records. This file is the one definition: preload_macos.c includes it for
 * its enum, and build.rs turns it into the Rust table (src/macos_catalog.rs) that maps the
 * numbers back to the options' probes by name. The names are core's MACOS catalog
 * (core/src/probes.rs); a test checks that the two hold the same functions.
 *
 * One entry a line, nothing else on it. */
FUNCTION(malloc)
FUNCTION(calloc)
FUNCTION(realloc)
FUNCTION(reallocf)
FUNCTION(valloc)
FUNCTION(posix_memalign)
FUNCTION(aligned_alloc)
FUNCTION(malloc_zone_malloc)
FUNCTION(malloc_zone_calloc)
FUNCTION(malloc_zone_realloc)
FUNCTION(malloc_zone_valloc)
FUNCTION(malloc_zone_memalign)
FUNCTION(malloc_type_malloc)
FUNCTION(malloc_type_calloc)
FUNCTION(malloc_type_realloc)
FUNCTION(malloc_type_valloc)
FUNCTION(malloc_type_aligned_alloc)
FUNCTION(malloc_type_posix_memalign)
FUNCTION(malloc_type_zone_malloc)
FUNCTION(malloc_type_zone_calloc)
FUNCTION(malloc_type_zone_realloc)
FUNCTION(malloc_type_zone_valloc)
FUNCTION(malloc_type_zone_memalign)
