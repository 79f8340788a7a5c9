/* fsops: tiny timing helper for bench/run (compiled by the harness with cc -O2).
 *
 *   fsops open     ROOT LIST PASSES   open(O_RDONLY)+close of ROOT/<each line of LIST>
 *   fsops stat     ROOT LIST PASSES   stat() of ROOT/<each line>
 *   fsops readlink PATH ITERS         readlink(PATH)
 *   fsops create   DIR N SIZE         create N files of SIZE bytes (open O_CREAT|O_EXCL, write, close)
 *   fsops unlink   DIR N              unlink the N files made by create
 *   fsops populate DIR NDIRS NFILES   NDIRS directories of NFILES empty files each (untimed setup)
 *
 * The timed commands print one line: "<ops> <elapsed_ns>". A failing call exits 1 with the path.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void die(const char *what, const char *path) {
    fprintf(stderr, "fsops: %s %s: %s\n", what, path, strerror(errno));
    exit(1);
}

static char **load(const char *root, const char *list, size_t *n) {
    FILE *f = fopen(list, "r");
    if (!f) die("open", list);
    size_t cap = 1024, k = 0;
    char **v = malloc(cap * sizeof *v);
    char line[PATH_MAX];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!line[0]) continue;
        if (k == cap) v = realloc(v, (cap *= 2) * sizeof *v);
        if (asprintf(&v[k++], "%s/%s", root, line) < 0) exit(1);
    }
    fclose(f);
    *n = k;
    return v;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: see the comment at the top of fsops.c\n");
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "open") || !strcmp(cmd, "stat")) {
        if (argc != 5) return 2;
        size_t n;
        char **v = load(argv[2], argv[3], &n);
        int passes = atoi(argv[4]);
        int is_open = !strcmp(cmd, "open");
        struct stat st;
        long long t0 = now_ns();
        for (int p = 0; p < passes; p++)
            for (size_t i = 0; i < n; i++) {
                if (is_open) {
                    int fd = open(v[i], O_RDONLY | O_CLOEXEC);
                    if (fd < 0) die("open", v[i]);
                    close(fd);
                } else if (stat(v[i], &st) != 0) {
                    die("stat", v[i]);
                }
            }
        long long t1 = now_ns();
        printf("%lld %lld\n", (long long)n * passes, t1 - t0);
        return 0;
    }
    if (!strcmp(cmd, "readlink")) {
        if (argc != 4) return 2;
        long iters = atol(argv[3]);
        char buf[PATH_MAX];
        long long t0 = now_ns();
        for (long i = 0; i < iters; i++)
            if (readlink(argv[2], buf, sizeof buf) < 0) die("readlink", argv[2]);
        long long t1 = now_ns();
        printf("%ld %lld\n", iters, t1 - t0);
        return 0;
    }
    if (!strcmp(cmd, "create") || !strcmp(cmd, "unlink")) {
        if (argc < 4) return 2;
        long n = atol(argv[3]);
        size_t size = argc > 4 ? (size_t)atol(argv[4]) : 0;
        char *data = calloc(1, size + 1);
        memset(data, 'x', size);
        char path[PATH_MAX];
        int is_create = !strcmp(cmd, "create");
        long long t0 = now_ns();
        for (long i = 0; i < n; i++) {
            snprintf(path, sizeof path, "%s/f%06ld", argv[2], i);
            if (is_create) {
                int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
                if (fd < 0) die("create", path);
                if (size && write(fd, data, size) != (ssize_t)size) die("write", path);
                if (close(fd) != 0) die("close", path);
            } else if (unlink(path) != 0) {
                die("unlink", path);
            }
        }
        long long t1 = now_ns();
        printf("%ld %lld\n", n, t1 - t0);
        return 0;
    }
    if (!strcmp(cmd, "populate")) {
        if (argc != 5) return 2;
        long nd = atol(argv[3]), nf = atol(argv[4]);
        char path[PATH_MAX];
        if (mkdir(argv[2], 0755) != 0 && errno != EEXIST) die("mkdir", argv[2]);
        for (long d = 0; d < nd; d++) {
            snprintf(path, sizeof path, "%s/d%04ld", argv[2], d);
            if (mkdir(path, 0755) != 0 && errno != EEXIST) die("mkdir", path);
            for (long i = 0; i < nf; i++) {
                snprintf(path, sizeof path, "%s/d%04ld/f%05ld", argv[2], d, i);
                int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                if (fd < 0) die("create", path);
                close(fd);
            }
        }
        return 0;
    }
    fprintf(stderr, "fsops: unknown command %s\n", cmd);
    return 2;
}
