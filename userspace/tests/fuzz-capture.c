// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz-capture: a libFuzzer target for tcptrace-read's capture decoder and
 * everything behind it (filters, sockets, the table, JSON, CSV, ladders,
 * statistics).  It compiles tcptrace-read.c itself, without its main().
 *
 * An input is one byte choosing the options, then a capture file, which
 * the reader reads with -r from a memfd.  Whatever the bytes, the reader
 * must print or refuse them, never crash, leak or hit undefined behaviour.
 * `make fuzz` builds it with clang -fsanitize=fuzzer,address,undefined and
 * runs it, seeded with every tests/fixtures/ capture under every option set
 * (FUZZ_OPTION_SETS in the Makefile is their number).
 */
#define TCPTRACE_READ_NO_MAIN
/* Small, so that inputs reach the forgetting of sockets and transitions. */
#define MAX_SOCKS	6
#define LADDER_MAX_RECS	12
#include "../tcptrace-read.c"

#include <dirent.h>
#include <sys/mman.h>

#define MAX_ARGS	12

/*
 * Where the pictures go: made by LLVMFuzzerInitialize(), --svg-all's
 * emptied after each input.
 */
static char svg_dir[64] = "/tmp/fuzz-svg-XXXXXX";
static char svg_file[96], svg_all[96];

/* The option sets; an input's first byte picks one, modulo their number. */
static const char *const option_sets[][MAX_ARGS] = {
	{ NULL },
	{ "--absolute", "-W", NULL },
	{ "-T", NULL },
	{ "-j", NULL },
	{ "--csv", NULL },
	{ "-L", NULL },
	{ "-L", "--absolute", "-T", NULL },
	{ "-S", NULL },
	{ "-c", "3", NULL },
	{ "-L", "-c", "5", NULL },
	{ "--port", "1-1000,8080", "--state", "ESTABLISHED,CLOSE", NULL },
	{ "--addr", "127.0.0.0/8,::1", "-4", NULL },
	{ "--pid", "701", "--comm", "curl", "-6", NULL },
	{ "--sock", "1002", "-L", NULL },
	{ "--old-state", "FIN_WAIT1", "--new-state", "CLOSING", "-j", NULL },
	{ "-N", "4026531840", "--raddr", "10.0.0.0/8", "-S", NULL },
	{ "-L", "--svg", svg_file, NULL },
	{ "-L", "--svg-all", svg_all, NULL },
	{ "-S", "--svg", "-", NULL },
	{ "-L", "--absolute", "-T", "--svg", "-", "--connection", "1002",
	  NULL },
};

#define NR_SETS	(sizeof(option_sets) / sizeof(option_sets[0]))

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Remove the files --svg-all wrote, so that they do not pile up. */
static void empty_dir(const char *path)
{
	char name[sizeof(svg_all) + 256];
	struct dirent *e;
	DIR *d = opendir(path);

	if (!d)
		abort();
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(name, sizeof(name), "%s/%s", path, e->d_name);
		unlink(name);
	}
	closedir(d);
}

/* At exit: nothing left in /tmp. */
static void remove_svg_dir(void)
{
	empty_dir(svg_all);
	rmdir(svg_all);
	unlink(svg_file);
	rmdir(svg_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	quiet = true;
	setenv("TZ", "UTC", 1);
	if (!mkdtemp(svg_dir))
		abort();
	snprintf(svg_file, sizeof(svg_file), "%s/one.svg", svg_dir);
	snprintf(svg_all, sizeof(svg_all), "%s/all", svg_dir);
	if (mkdir(svg_all, 0700))
		abort();
	atexit(remove_svg_dir);
	if (!freopen("/dev/null", "w", stdout))
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64], *argv[MAX_ARGS + 4];
	const char *const *opts;
	int fd, argc = 0, i;

	if (!size)
		return 0;
	opts = option_sets[data[0] % NR_SETS];
	fd = memfd_create("capture", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	if (size > 1 && write_full(fd, data + 1, size - 1))
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

	argv[argc++] = (char *)"tcptrace-read";
	argv[argc++] = (char *)"-r";
	argv[argc++] = path;
	for (i = 0; opts[i]; i++)
		argv[argc++] = (char *)opts[i];
	argv[argc] = NULL;
	tcptrace_read_main(argc, argv);
	fflush(stdout);
	close(fd);
	empty_dir(svg_all);
	return 0;
}
