/*
 * dbproc-launch: how dbproc starts a code (contract section 10), in one small exec.
 *
 *     dbproc-launch REPORT_FD RUNNER_PID PROGRAM [ARG...]
 *
 * 1. Asks the kernel to SIGKILL it when its runner (the dbproc thread that started it,
 *    process RUNNER_PID) dies, and exits at once when the runner is already gone.
 * 2. Forks the code from this small process, so that the code's ru_maxrss is its own peak
 *    and not the controller's image (Linux keeps a vforked child's high-water mark across
 *    exec). The code gets the same parent-death signal, tied to this process.
 * 3. Executes PROGRAM without a shell: a name without '/' is looked up on PATH, and a file
 *    the kernel refuses (ENOEXEC) is an error, never handed to /bin/sh as execvp would.
 * 4. Waits for the code, writes "dbproc-launch status S peak-kb K" (S the raw wait status)
 *    to REPORT_FD, and exits as the code did (128 + N when it died of signal N).
 *
 * The code inherits neither REPORT_FD nor anything else of the launcher's. Exit 125 means
 * the launcher itself could not work, 126 that PROGRAM cannot be executed, 127 that it was
 * not found.
 *
 * Built at install time by setup.py; without a C compiler dbproc falls back to
 * "setpriv --pdeathsig KILL -- time ... setpriv --pdeathsig KILL -- PROGRAM", which does
 * the same in four execs (dbproc/executors/launch.py).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int parse_long(const char *text, long *out)
{
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || *text == '\0' || *end != '\0')
        return -1;
    *out = value;
    return 0;
}

/* execve PROGRAM, searching PATH for a bare name; returns the errno that stopped it. */
static int exec_program(char *const argv[])
{
    const char *program = argv[0];
    if (strchr(program, '/') != NULL) {
        execve(program, argv, environ);
        return errno;
    }
    const char *path = getenv("PATH");
    if (path == NULL || *path == '\0')
        path = "/usr/local/bin:/usr/bin:/bin";
    int seen = ENOENT;
    char candidate[PATH_MAX];
    while (1) {
        const char *colon = strchr(path, ':');
        size_t length = colon ? (size_t)(colon - path) : strlen(path);
        int written;
        if (length == 0)
            written = snprintf(candidate, sizeof candidate, "%s", program);
        else
            written = snprintf(candidate, sizeof candidate, "%.*s/%s", (int)length, path, program);
        if (written > 0 && (size_t)written < sizeof candidate) {
            execve(candidate, argv, environ);
            if (errno != ENOENT && errno != ENOTDIR)
                seen = errno; /* EACCES, ENOEXEC...: remembered, the search goes on */
        }
        if (colon == NULL)
            return seen;
        path = colon + 1;
    }
}

int main(int argc, char *argv[])
{
    long report_fd, runner;
    if (argc < 4 || parse_long(argv[1], &report_fd) != 0 || parse_long(argv[2], &runner) != 0) {
        fprintf(stderr, "dbproc-launch: usage: dbproc-launch REPORT_FD RUNNER_PID PROGRAM [ARG...]\n");
        return 125;
    }
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
        perror("dbproc-launch: prctl");
        return 125;
    }
    if (getppid() != (pid_t)runner)
        return 125; /* the runner died before the death signal was armed */
    pid_t self = getpid();
    pid_t child = fork();
    if (child < 0) {
        perror("dbproc-launch: fork");
        return 125;
    }
    if (child == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != self)
            _exit(125);
        close((int)report_fd);
        int error = exec_program(argv + 3);
        fprintf(stderr, "dbproc-launch: cannot run %s: %s\n", argv[3], strerror(error));
        _exit(error == ENOENT ? 127 : 126);
    }
    int status;
    struct rusage usage;
    while (wait4(child, &status, 0, &usage) < 0) {
        if (errno != EINTR) {
            perror("dbproc-launch: wait4");
            return 125;
        }
    }
    dprintf((int)report_fd, "dbproc-launch status %d peak-kb %ld\n", status, usage.ru_maxrss);
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 125;
}
