/* The pod sandbox's process (the "pause" container): it holds the pod's namespaces
 * and does nothing else. registry.k8s.io/pause cannot be pulled on these machines,
 * so the node tier builds its own; containerd's sandbox_image names it. It exits on
 * SIGINT or SIGTERM and reaps children (it is PID 1 when a pod shares its PID
 * namespace). */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) { (void)sig; _exit(0); }

static void reap(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction s = {0};
  s.sa_handler = stop;
  sigaction(SIGINT, &s, NULL);
  sigaction(SIGTERM, &s, NULL);
  s.sa_handler = reap;
  s.sa_flags = SA_NOCLDSTOP;
  sigaction(SIGCHLD, &s, NULL);
  for (;;) pause();
  return 0;
}
