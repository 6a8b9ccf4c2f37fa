"""bench/export.py: export throughput and the server's memory during it.

Owns: the export case. Streams one export route to the end, counts its rows
(lines, less the CSV header) and time to the last byte, and watches the
server's memory from /proc/PID/status while it streams:
  - VmRSS sampled every SAMPLE_SECS; growth = highest sample - RSS before;
  - VmHWM (peak RSS) reset just before the request by writing 5 to
    /proc/PID/clear_refs (Linux >= 4.0; needs to own the process or root),
    so its value after the export is the true peak during it, samples or not.
The reported growth is the larger of the two readings. It also reports the
server's CPU time (user + system, /proc/PID/stat) over the export: on a
shared machine, rows per CPU second moves less than rows per second.

Usage: export.py BASE_URL PATH TOKEN_FILE SERVER_PID LABEL RESULT_JSONL
Appends one JSON line: rows, bytes, seconds, rows_per_s, rss_before_kib,
rss_peak_kib, rss_growth_kib, http status, server_cpu_s, rows_per_cpu_s.
"""

import http.client
import json
import os
import sys
import threading
import time
import urllib.parse

SAMPLE_SECS = 0.01
CHUNK_BYTES = 1 << 16


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def cpu_secs(pid):
    """User + system CPU time of the process so far, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        # The command name (field 2) may hold spaces; fields after it are plain.
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_peak(pid):
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def main():
    base, path, token_file, pid, label, result = sys.argv[1:7]
    token = open(token_file).read().strip()
    url = urllib.parse.urlparse(base)
    rss_before = status_kib(pid, "VmRSS")
    peak_was_reset = reset_peak(pid)
    samples = [rss_before]
    streaming = threading.Event()
    streaming.set()

    def sample():
        while streaming.is_set():
            samples.append(status_kib(pid, "VmRSS"))
            time.sleep(SAMPLE_SECS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu_before = cpu_secs(pid)
    started = time.monotonic()
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=600)
    connection.request("GET", path, headers={"Authorization": "Bearer " + token})
    response = connection.getresponse()
    newlines = 0
    size = 0
    last = b"\n"
    while True:
        chunk = response.read(CHUNK_BYTES)
        if not chunk:
            break
        newlines += chunk.count(b"\n")
        size += len(chunk)
        last = chunk[-1:]
    elapsed = time.monotonic() - started
    cpu = cpu_secs(pid) - cpu_before
    streaming.clear()
    sampler.join()
    lines = newlines + (0 if last == b"\n" else 1)
    rows = lines - 1 if path.split("?")[0].endswith(".csv") else lines
    peak = max(samples)
    if peak_was_reset:
        peak = max(peak, status_kib(pid, "VmHWM"))
    line = {"label": label, "status": response.status, "rows": rows, "bytes": size,
            "seconds": round(elapsed, 3), "rows_per_s": round(rows / elapsed, 1) if elapsed else 0,
            "rss_before_kib": rss_before, "rss_peak_kib": peak,
            "rss_growth_kib": peak - rss_before, "peak_reset": peak_was_reset,
            "samples": len(samples), "server_cpu_s": round(cpu, 2),
            "rows_per_cpu_s": round(rows / cpu, 1) if cpu else 0}
    with open(result, "a") as f:
        f.write(json.dumps(line) + "\n")
    print(json.dumps(line))


if __name__ == "__main__":
    main()
