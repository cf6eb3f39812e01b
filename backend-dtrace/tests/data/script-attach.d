/*
 * dtrace command line (as root, with this text saved as allocflame.d):
 *   /usr/sbin/dtrace -Z -q -s allocflame.d -o allocflame.out -p 4242
 * note: DTrace's pid provider traces the target process only: allocations of its children are not recorded
 */
/*
 * allocflame: allocation stacks of pid 4242.
 * Generated; run as root with `dtrace -Z -s FILE -c PROGRAM` (or -p PID).
 * -Z lets descriptions of functions missing from this macOS (malloc_type_* before
 * macOS 14, a user probe's library not loaded yet) match nothing instead of failing.
 */
#pragma D option quiet
#pragma D option ustackframes=64
#pragma D option aggsize=32m
#pragma D option aggrate=100ms
#pragma D option bufsize=4m
#pragma D option dynvarsize=16m
#pragma D option bufresize=auto

self int allocflame_depth;

BEGIN
{
	printf("allocflame-target %d\n", $target);
}

/*
 * Count the outermost allocator call of each thread only: malloc calling
 * malloc_zone_malloc, or realloc(NULL, n) calling malloc, is one allocation, at the
 * stack of the outer call. The clauses of a probe run in program order, so these see
 * the depth before the increment further down.
 */
pid$target:libsystem_malloc.dylib:malloc:entry
/self->allocflame_depth == 0/
{
	@allocflame_allocs[ustack()] = count();
	@allocflame_bytes[ustack()] = sum(arg0);
	@allocflame_calls[probemod, probefunc] = count();
	@allocflame_callbytes[probemod, probefunc] = sum(arg0);
}

pid$target:libsystem_malloc.dylib:calloc:entry
/self->allocflame_depth == 0/
{
	@allocflame_allocs[ustack()] = count();
	@allocflame_bytes[ustack()] = sum(arg0 * arg1);
	@allocflame_calls[probemod, probefunc] = count();
	@allocflame_callbytes[probemod, probefunc] = sum(arg0 * arg1);
}

pid$target:libsystem_malloc.dylib:realloc:entry
/self->allocflame_depth == 0/
{
	@allocflame_allocs[ustack()] = count();
	@allocflame_bytes[ustack()] = sum(arg1);
	@allocflame_calls[probemod, probefunc] = count();
	@allocflame_callbytes[probemod, probefunc] = sum(arg1);
}

pid$target:libsystem_malloc.dylib:reallocf:entry
/self->allocflame_depth == 0/
{
	@allocflame_allocs[ustack()] = count();
	@allocflame_bytes[ustack()] = sum(arg1);
	@allocflame_calls[probemod, probefunc] = count();
	@allocflame_callbytes[probemod, probefunc] = sum(arg1);
}

pid$target:libsystem_malloc.dylib:valloc:entry
/self->allocflame_depth == 0/
{
	@allocflame_allocs[ustack()] = count();
	@allocflame_bytes[ustack()] = sum(arg0);
	@allocflame_calls[probemod, probefunc] = count();
	@allocflame_callbytes[probemod, probefunc] = sum(arg0);
}

pid$target:libsystem_malloc.dylib:posix_memalign:entry
/self->allocflame_depth == 0/
{
	@allocflame_allocs[ustack()] = count();
	@allocflame_bytes[ustack()] = sum(arg2);
	@allocflame_calls[probemod, probefunc] = count();
	@allocflame_callbytes[probemod, probefunc] = sum(arg2);
}

pid$target:libsystem_malloc.dylib:aligned_alloc:entry
/self->allocflame_depth == 0/
{
	@allocflame_allocs[ustack()] = count();
	@allocflame_bytes[ustack()] = sum(arg1);
	@allocflame_calls[probemod, probefunc] = count();
	@allocflame_callbytes[probemod, probefunc] = sum(arg1);
}

pid$target:libsystem_malloc.dylib:malloc_zone_malloc:entry
/self->allocflame_depth == 0/
{
	@allocflame_allocs[ustack()] = count();
	@allocflame_bytes[ustack()] = sum(arg1);
	@allocflame_calls[probemod, probefunc] = count();
	@allocflame_callbytes[probemod, probefunc] = sum(arg1);
}

pid$target:libsystem_malloc.dylib:malloc_zone_calloc:entry
/self->allocflame_depth == 0/
{
	@allocflame_allocs[ustack()] = count();
	@allocflame_bytes[ustack()] = sum(arg1 * arg2);
	@allocflame_calls[probemod, probefunc] = count();
	@allocflame_callbytes[probemod, probefunc] = sum(arg1 * arg2);
}

pid$target:libsystem_malloc.dylib:malloc_zone_realloc:entry
/self->allocflame_depth == 0/
{
	@allocflame_allocs[ustack()] = count();
	@allocflame_bytes[ustack()] = sum(arg2);
	@allocflame_calls[probemod, probefunc] = count();
	@allocflame_callbytes[probemod, probefunc] = sum(arg2);
}

pid$target:libsystem_malloc.dylib:malloc_zone_valloc:entry
/self->allocflame_depth == 0/
{
	@allocflame_allocs[ustack()] = count();
	@allocflame_bytes[ustack()] = sum(arg1);
	@allocflame_calls[probemod, probefunc] = count();
	@allocflame_callbytes[probemod, probefunc] = sum(arg1);
}

pid$target:libsystem_malloc.dylib:malloc_zone_memalign:entry
/self->allocflame_depth == 0/
{
	@allocflame_allocs[ustack()] = count();
	@allocflame_bytes[ustack()] = sum(arg2);
	@allocflame_calls[probemod, probefunc] = count();
	@allocflame_callbytes[probemod, probefunc] = sum(arg2);
}

pid$target:libsystem_malloc.dylib:malloc_type_malloc:entry
/self->allocflame_depth == 0/
{
	@allocflame_allocs[ustack()] = count();
	@allocflame_bytes[ustack()] = sum(arg0);
	@allocflame_calls[probemod, probefunc] = count();
	@allocflame_callbytes[probemod, probefunc] = sum(arg0);
}

pid$target:libsystem_malloc.dylib:malloc_type_calloc:entry
/self->allocflame_depth == 0/
{
	@allocflame_allocs[ustack()] = count();
	@allocflame_bytes[ustack()] = sum(arg0 * arg1);
	@allocflame_calls[probemod, probefunc] = count();
	@allocflame_callbytes[probemod, probefunc] = sum(arg0 * arg1);
}

pid$target:libsystem_malloc.dylib:malloc_type_realloc:entry
/self->allocflame_depth == 0/
{
	@allocflame_allocs[ustack()] = count();
	@allocflame_bytes[ustack()] = sum(arg1);
	@allocflame_calls[probemod, probefunc] = count();
	@allocflame_callbytes[probemod, probefunc] = sum(arg1);
}

pid$target:libsystem_malloc.dylib:malloc_type_valloc:entry
/self->allocflame_depth == 0/
{
	@allocflame_allocs[ustack()] = count();
	@allocflame_bytes[ustack()] = sum(arg0);
	@allocflame_calls[probemod, probefunc] = count();
	@allocflame_callbytes[probemod, probefunc] = sum(arg0);
}

pid$target:libsystem_malloc.dylib:malloc_type_aligned_alloc:entry
/self->allocflame_depth == 0/
{
	@allocflame_allocs[ustack()] = count();
	@allocflame_bytes[ustack()] = sum(arg1);
	@allocflame_calls[probemod, probefunc] = count();
	@allocflame_callbytes[probemod, probefunc] = sum(arg1);
}

pid$target:libsystem_malloc.dylib:malloc_type_posix_memalign:entry
/self->allocflame_depth == 0/
{
	@allocflame_allocs[ustack()] = count();
	@allocflame_bytes[ustack()] = sum(arg2);
	@allocflame_calls[probemod, probefunc] = count();
	@allocflame_callbytes[probemod, probefunc] = sum(arg2);
}

pid$target:libsystem_malloc.dylib:malloc_type_zone_malloc:entry
/self->allocflame_depth == 0/
{
	@allocflame_allocs[ustack()] = count();
	@allocflame_bytes[ustack()] = sum(arg1);
	@allocflame_calls[probemod, probefunc] = count();
	@allocflame_callbytes[probemod, probefunc] = sum(arg1);
}

pid$target:libsystem_malloc.dylib:malloc_type_zone_calloc:entry
/self->allocflame_depth == 0/
{
	@allocflame_allocs[ustack()] = count();
	@allocflame_bytes[ustack()] = sum(arg1 * arg2);
	@allocflame_calls[probemod, probefunc] = count();
	@allocflame_callbytes[probemod, probefunc] = sum(arg1 * arg2);
}

pid$target:libsystem_malloc.dylib:malloc_type_zone_realloc:entry
/self->allocflame_depth == 0/
{
	@allocflame_allocs[ustack()] = count();
	@allocflame_bytes[ustack()] = sum(arg2);
	@allocflame_calls[probemod, probefunc] = count();
	@allocflame_callbytes[probemod, probefunc] = sum(arg2);
}

pid$target:libsystem_malloc.dylib:malloc_type_zone_valloc:entry
/self->allocflame_depth == 0/
{
	@allocflame_allocs[ustack()] = count();
	@allocflame_bytes[ustack()] = sum(arg1);
	@allocflame_calls[probemod, probefunc] = count();
	@allocflame_callbytes[probemod, probefunc] = sum(arg1);
}

pid$target:libsystem_malloc.dylib:malloc_type_zone_memalign:entry
/self->allocflame_depth == 0/
{
	@allocflame_allocs[ustack()] = count();
	@allocflame_bytes[ustack()] = sum(arg2);
	@allocflame_calls[probemod, probefunc] = count();
	@allocflame_callbytes[probemod, probefunc] = sum(arg2);
}

pid$target:libswiftCore.dylib:swift_allocObject:entry
/self->allocflame_depth == 0/
{
	@allocflame_allocs[ustack()] = count();
	@allocflame_bytes[ustack()] = sum(arg1);
	@allocflame_calls[probemod, probefunc] = count();
	@allocflame_callbytes[probemod, probefunc] = sum(arg1);
}

pid$target:libsystem_malloc.dylib:malloc:entry,
pid$target:libsystem_malloc.dylib:calloc:entry,
pid$target:libsystem_malloc.dylib:realloc:entry,
pid$target:libsystem_malloc.dylib:reallocf:entry,
pid$target:libsystem_malloc.dylib:valloc:entry,
pid$target:libsystem_malloc.dylib:posix_memalign:entry,
pid$target:libsystem_malloc.dylib:aligned_alloc:entry,
pid$target:libsystem_malloc.dylib:malloc_zone_malloc:entry,
pid$target:libsystem_malloc.dylib:malloc_zone_calloc:entry,
pid$target:libsystem_malloc.dylib:malloc_zone_realloc:entry,
pid$target:libsystem_malloc.dylib:malloc_zone_valloc:entry,
pid$target:libsystem_malloc.dylib:malloc_zone_memalign:entry,
pid$target:libsystem_malloc.dylib:malloc_type_malloc:entry,
pid$target:libsystem_malloc.dylib:malloc_type_calloc:entry,
pid$target:libsystem_malloc.dylib:malloc_type_realloc:entry,
pid$target:libsystem_malloc.dylib:malloc_type_valloc:entry,
pid$target:libsystem_malloc.dylib:malloc_type_aligned_alloc:entry,
pid$target:libsystem_malloc.dylib:malloc_type_posix_memalign:entry,
pid$target:libsystem_malloc.dylib:malloc_type_zone_malloc:entry,
pid$target:libsystem_malloc.dylib:malloc_type_zone_calloc:entry,
pid$target:libsystem_malloc.dylib:malloc_type_zone_realloc:entry,
pid$target:libsystem_malloc.dylib:malloc_type_zone_valloc:entry,
pid$target:libsystem_malloc.dylib:malloc_type_zone_memalign:entry,
pid$target:libswiftCore.dylib:swift_allocObject:entry
{
	self->allocflame_depth++;
}

pid$target:libsystem_malloc.dylib:malloc:return,
pid$target:libsystem_malloc.dylib:calloc:return,
pid$target:libsystem_malloc.dylib:realloc:return,
pid$target:libsystem_malloc.dylib:reallocf:return,
pid$target:libsystem_malloc.dylib:valloc:return,
pid$target:libsystem_malloc.dylib:posix_memalign:return,
pid$target:libsystem_malloc.dylib:aligned_alloc:return,
pid$target:libsystem_malloc.dylib:malloc_zone_malloc:return,
pid$target:libsystem_malloc.dylib:malloc_zone_calloc:return,
pid$target:libsystem_malloc.dylib:malloc_zone_realloc:return,
pid$target:libsystem_malloc.dylib:malloc_zone_valloc:return,
pid$target:libsystem_malloc.dylib:malloc_zone_memalign:return,
pid$target:libsystem_malloc.dylib:malloc_type_malloc:return,
pid$target:libsystem_malloc.dylib:malloc_type_calloc:return,
pid$target:libsystem_malloc.dylib:malloc_type_realloc:return,
pid$target:libsystem_malloc.dylib:malloc_type_valloc:return,
pid$target:libsystem_malloc.dylib:malloc_type_aligned_alloc:return,
pid$target:libsystem_malloc.dylib:malloc_type_posix_memalign:return,
pid$target:libsystem_malloc.dylib:malloc_type_zone_malloc:return,
pid$target:libsystem_malloc.dylib:malloc_type_zone_calloc:return,
pid$target:libsystem_malloc.dylib:malloc_type_zone_realloc:return,
pid$target:libsystem_malloc.dylib:malloc_type_zone_valloc:return,
pid$target:libsystem_malloc.dylib:malloc_type_zone_memalign:return,
pid$target:libswiftCore.dylib:swift_allocObject:return
/self->allocflame_depth > 0/
{
	self->allocflame_depth--;
}

tick-10s
{
	exit(0);
}

END
{
	printf("\nallocflame-dtrace 1 calls\n");
	printa("allocflame-probe %s %s %@d\n", @allocflame_calls);
	printf("\nallocflame-dtrace 1 call-bytes\n");
	printa("allocflame-probe %s %s %@d\n", @allocflame_callbytes);
	printf("\nallocflame-dtrace 1 allocs\n");
	printa("%k\n%@d\n", @allocflame_allocs);
	printf("\nallocflame-dtrace 1 bytes\n");
	printa("%k\n%@d\n", @allocflame_bytes);
	printf("\nallocflame-dtrace 1 end\n");
}
