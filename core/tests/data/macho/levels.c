/* The source of levels.o (see README.md). */
void *malloc(unsigned long);
static void *level2(void) { return malloc(16); }
void *level1(void) { return level2(); }
