/* Preloaded into tritonserver by the launcher (engine/server/launcher.py, LD_PRELOAD), for what
 * Triton 2.51 cannot do itself (docs/SECURITY.md, "A local user"):
 *
 * 1. The admin key never appears on a command line. Triton takes its restricted-API key only as
 *    an argument, and /proc/<pid>/cmdline is readable by every local user. The launcher passes a
 *    placeholder there and the key in S2F_SHIM_ADMIN_KEY (a process's environment is readable by
 *    its own user only); before main() runs, every argument holding the placeholder is replaced,
 *    in argv, by a heap copy holding the key. /proc shows the kernel's copy: the placeholder.
 * 2. Request audio is never readable by others. The Python backend creates its shared-memory
 *    regions owner-only (the launcher's umask) and then fchmod()s them to 0644; a local user who
 *    opens a region in that moment keeps a descriptor to every request that passes through it.
 *    fchmod() on such a region keeps the owner's bits only.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_VARIABLE "S2F_SHIM_ADMIN_KEY"
#define PLACEHOLDER "S2F_ADMIN_KEY_FROM_ENVIRONMENT"
#define REGION_PREFIX "/dev/shm/triton_python_backend_shm_region_"

static char *with_key(const char *argument, const char *at, const char *key) {
  size_t head = (size_t)(at - argument), tail = strlen(at + strlen(PLACEHOLDER));
  char *out = malloc(head + strlen(key) + tail + 1);
  if (out == NULL) return NULL;
  memcpy(out, argument, head);
  memcpy(out + head, key, strlen(key));
  memcpy(out + head + strlen(key), at + strlen(PLACEHOLDER), tail + 1);
  return out;
}

static void put_key_into_argv(int argc, char **argv, char **envp) {
  (void)envp;
  const char *key = getenv(KEY_VARIABLE);
  if (key == NULL) return;
  for (int i = 1; i < argc; ++i) {
    const char *at = strstr(argv[i], PLACEHOLDER);
    char *replaced = at != NULL ? with_key(argv[i], at, key) : NULL;
    if (replaced != NULL) argv[i] = replaced;
  }
  unsetenv(KEY_VARIABLE); /* the stubs and anything else Triton starts never see it */
}

/* glibc calls .init_array entries with (argc, argv, envp) before main(). */
__attribute__((section(".init_array"), used)) static void (*const s2f_init)(int, char **, char **) =
    put_key_into_argv;

static int is_backend_region(int fd) {
  char link[64], target[PATH_MAX];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, target, sizeof target - 1);
  if (n <= 0) return 0;
  target[n] = '\0';
  return strncmp(target, REGION_PREFIX, strlen(REGION_PREFIX)) == 0;
}

int fchmod(int fd, mode_t mode) {
  static int (*real_fchmod)(int, mode_t);
  if (real_fchmod == NULL) real_fchmod = (int (*)(int, mode_t))dlsym(RTLD_NEXT, "fchmod");
  if (is_backend_region(fd)) mode &= S_IRWXU;
  return real_fchmod(fd, mode);
}

/* Lets importlib find this file (it is never imported). */
void *PyInit__server_shim(void) { return NULL; }
