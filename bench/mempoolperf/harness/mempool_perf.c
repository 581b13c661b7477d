/*
 * mempool_perf: the get/put loop of DPDK 22.11's mempool_perf_autotest for a
 * chosen list of rows, so that vsdpdk can compare DPDK and gopmd row by row
 * without the whole 45-minute autotest.
 *
 * Usage: mempool_perf <EAL args> -- -d <seconds> <cache,cores,get,put,keep>...
 *
 * For each row it prints a line in the autotest's own format:
 *   mempool_autotest cache=512 cores=1 n_get_bulk=32 n_put_bulk=32 n_keep=128 constant_n=0 rate_persec=N
 * Before the rows it prints "timer_hz=<Hz>" and "version=<rte_version()>".
 *
 * What matches the autotest: the pools (size lcores*(512+512)-1, 2048-byte
 * elements, cache 0 or 512, default ops, objects numbered by an init
 * callback), the per-lcore default cache, the inner loop (N=65536 objects per
 * round, n_keep objects got in bulks of n_get_bulk and put back in bulks of
 * n_put_bulk), the clock (rte_get_timer_cycles), the start barrier and the
 * rate (sum over lcores of objects / seconds). What differs: the duration is
 * given in seconds (may be fractional) instead of the fixed TIME_S = 5, and
 * only the runtime-valued bulk sizes (constant_n=0) are measured.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mempool.h>
#include <rte_pause.h>
#include <rte_version.h>

#define OBJS_PER_ROUND 65536 /* N in the autotest */
#define ELT_SIZE 2048
#define MAX_KEEP 512
#define MAX_ROWS 64

struct row {
	unsigned int cache, cores, get, put, keep;
};

struct lcore_stats {
	uint64_t objs;
	int err;
} __rte_cache_aligned;

static struct lcore_stats stats[RTE_MAX_LCORE];
static uint32_t start_flag;
static uint64_t duration_cycles;
static unsigned int n_get, n_put, n_keep;

static void
number_object(struct rte_mempool *mp, void *arg __rte_unused, void *obj,
	      unsigned int i)
{
	memset(obj, 0, mp->elt_size);
	*(uint32_t *)obj = i;
}

static __rte_always_inline int
one_round(struct rte_mempool *mp, struct rte_mempool_cache *cache,
	  unsigned int keep, unsigned int get, unsigned int put)
{
	void *objs[MAX_KEEP] __rte_cache_aligned;
	unsigned int round, idx;

	for (round = 0; likely(round < OBJS_PER_ROUND / keep); round++) {
		for (idx = 0; idx < keep; idx += get)
			if (unlikely(rte_mempool_generic_get(mp, &objs[idx],
							     get, cache) < 0))
				return -ENOENT;
		for (idx = 0; idx < keep; idx += put)
			rte_mempool_generic_put(mp, &objs[idx], put, cache);
	}
	return 0;
}

static int
lcore_loop(void *arg)
{
	struct rte_mempool *mp = arg;
	unsigned int lcore = rte_lcore_id();
	struct rte_mempool_cache *cache = rte_mempool_default_cache(mp, lcore);
	uint64_t start, elapsed = 0;

	stats[lcore].objs = 0;
	stats[lcore].err = 0;
	if (lcore != rte_get_main_lcore())
		rte_wait_until_equal_32(&start_flag, 1, __ATOMIC_RELAXED);

	start = rte_get_timer_cycles();
	while (elapsed < duration_cycles) {
		if (one_round(mp, cache, n_keep, n_get, n_put) < 0) {
			stats[lcore].err = -ENOENT;
			return -1;
		}
		elapsed = rte_get_timer_cycles() - start;
		stats[lcore].objs += OBJS_PER_ROUND;
	}
	return 0;
}

static int
run_row(struct rte_mempool *mp, const struct row *rw, double seconds,
	unsigned int pool_size)
{
	unsigned int lcore, left;
	double rate = 0;
	int ret = 0;

	if (rte_mempool_avail_count(mp) != pool_size) {
		fprintf(stderr, "mempool %s is not full before the row: %u of %u objects available\n",
			mp->name, rte_mempool_avail_count(mp), pool_size);
		return -1;
	}
	memset(stats, 0, sizeof(stats));
	n_get = rw->get;
	n_put = rw->put;
	n_keep = rw->keep;
	__atomic_store_n(&start_flag, 0, __ATOMIC_RELAXED);

	left = rw->cores;
	RTE_LCORE_FOREACH_WORKER(lcore) {
		if (left == 1)
			break;
		left--;
		rte_eal_remote_launch(lcore_loop, mp, lcore);
	}
	__atomic_store_n(&start_flag, 1, __ATOMIC_RELAXED);
	if (lcore_loop(mp) < 0)
		ret = -1;
	left = rw->cores;
	RTE_LCORE_FOREACH_WORKER(lcore) {
		if (left == 1)
			break;
		left--;
		if (rte_eal_wait_lcore(lcore) < 0)
			ret = -1;
	}
	if (ret < 0) {
		fprintf(stderr, "row cache=%u cores=%u get=%u put=%u keep=%u: a get failed (pool empty)\n",
			rw->cache, rw->cores, rw->get, rw->put, rw->keep);
		return -1;
	}
	for (lcore = 0; lcore < RTE_MAX_LCORE; lcore++)
		rate += (double)stats[lcore].objs / seconds;

	printf("mempool_autotest cache=%u cores=%u n_get_bulk=%u n_put_bulk=%u n_keep=%u constant_n=0 rate_persec=%" PRIu64 "\n",
	       rw->cache, rw->cores, rw->get, rw->put, rw->keep, (uint64_t)rate);
	fflush(stdout);
	return 0;
}

static int
parse_row(const char *s, struct row *rw, unsigned int lcores)
{
	char extra;

	if (sscanf(s, "%u,%u,%u,%u,%u%c", &rw->cache, &rw->cores, &rw->get,
		   &rw->put, &rw->keep, &extra) != 5) {
		fprintf(stderr, "row %s: want cache,cores,get,put,keep (five unsigned numbers)\n", s);
		return -1;
	}
	if (rw->cache != 0 && rw->cache != RTE_MEMPOOL_CACHE_MAX_SIZE) {
		fprintf(stderr, "row %s: cache must be 0 or %d, got %u\n", s,
			RTE_MEMPOOL_CACHE_MAX_SIZE, rw->cache);
		return -1;
	}
	if (rw->cores < 1 || rw->cores > lcores) {
		fprintf(stderr, "row %s: cores must be 1..%u (the EAL lcores), got %u\n",
			s, lcores, rw->cores);
		return -1;
	}
	if (rw->keep < 1 || rw->keep > MAX_KEEP) {
		fprintf(stderr, "row %s: keep must be 1..%d, got %u\n", s, MAX_KEEP, rw->keep);
		return -1;
	}
	if (rw->get == 0 || rw->keep % rw->get != 0 || rw->put == 0 ||
	    rw->keep % rw->put != 0) {
		fprintf(stderr, "row %s: get and put must divide keep\n", s);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct rte_mempool *nocache = NULL, *cached = NULL;
	struct row rows[MAX_ROWS];
	unsigned int nrows = 0, i, lcores, pool_size;
	double seconds = 0;
	int n, ret = 1;

	n = rte_eal_init(argc, argv);
	if (n < 0) {
		fprintf(stderr, "rte_eal_init failed: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	argc -= n;
	argv += n;
	lcores = rte_lcore_count();
	if (argc < 4 || strcmp(argv[1], "-d") != 0) {
		fprintf(stderr, "usage: mempool_perf <EAL args> -- -d <seconds> <cache,cores,get,put,keep>...\n");
		goto out;
	}
	seconds = strtod(argv[2], NULL);
	if (!(seconds > 0)) {
		fprintf(stderr, "duration %s: must be a positive number of seconds\n", argv[2]);
		goto out;
	}
	for (i = 3; i < (unsigned int)argc; i++) {
		if (nrows == MAX_ROWS) {
			fprintf(stderr, "more than %d rows\n", MAX_ROWS);
			goto out;
		}
		if (parse_row(argv[i], &rows[nrows], lcores) < 0)
			goto out;
		nrows++;
	}

	pool_size = lcores * (MAX_KEEP + RTE_MEMPOOL_CACHE_MAX_SIZE) - 1;
	nocache = rte_mempool_create("perf_test_nocache", pool_size, ELT_SIZE,
				     0, 0, NULL, NULL, number_object, NULL,
				     SOCKET_ID_ANY, 0);
	cached = rte_mempool_create("perf_test_cache", pool_size, ELT_SIZE,
				    RTE_MEMPOOL_CACHE_MAX_SIZE, 0, NULL, NULL,
				    number_object, NULL, SOCKET_ID_ANY, 0);
	if (nocache == NULL || cached == NULL) {
		fprintf(stderr, "rte_mempool_create: %s\n", rte_strerror(rte_errno));
		goto out;
	}

	duration_cycles = (uint64_t)(seconds * (double)rte_get_timer_hz());
	printf("timer_hz=%" PRIu64 "\n", rte_get_timer_hz());
	printf("version=%s\n", rte_version());
	for (i = 0; i < nrows; i++)
		if (run_row(rows[i].cache ? cached : nocache, &rows[i], seconds,
			    pool_size) < 0)
			goto out;
	ret = 0;
out:
	rte_mempool_free(cached);
	rte_mempool_free(nocache);
	rte_eal_cleanup();
	return ret;
}
