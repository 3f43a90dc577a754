/* connect ADDRESS PORT: one TCP connect from inside a pod, for the node tier's check
 * that a pod cannot leave the pod network. Prints "connected" or the error (for
 * example "Network is unreachable") and exits 0 only when the connection was made.
 * Numeric addresses only: a static binary has no resolver to lean on. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: connect ADDRESS PORT\n");
    return 2;
  }
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)atoi(argv[2]));
  if (inet_pton(AF_INET, argv[1], &a.sin_addr) != 1) {
    fprintf(stderr, "not an IPv4 address: %s\n", argv[1]);
    return 2;
  }
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    printf("socket: %s\n", strerror(errno));
    return 1;
  }
  struct timeval t = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &t, sizeof t);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    printf("%s\n", strerror(errno));
    return 1;
  }
  printf("connected\n");
  close(fd);
  return 0;
}
