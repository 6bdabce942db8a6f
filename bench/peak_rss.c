/*
 * Peak memory of one process, for bench/bench.ts. Loaded with LD_PRELOAD; when the process
 * exits it appends "<pid> <VmHWM in kB>" to $ONEVZ_BENCH_RSS_LOG. Unlike GNU time's %M, which
 * reports the largest process of the whole tree (here the simulated vzctl, itself a Deno
 * process), this gives onevz's own high-water mark.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((destructor)) static void report_peak_rss(void) {
  const char *log = getenv("ONEVZ_BENCH_RSS_LOG");
  if (!log) return;
  FILE *status = fopen("/proc/self/status", "r");
  if (!status) return;
  char line[256];
  long kb = -1;
  while (fgets(line, sizeof line, status)) {
    if (strncmp(line, "VmHWM:", 6) == 0) {
      kb = strtol(line + 6, NULL, 10);
      break;
    }
  }
  fclose(status);
  FILE *out = fopen(log, "a");
  if (!out) return;
  fprintf(out, "%d %ld\n", (int)getpid(), kb);
  fclose(out);
}
