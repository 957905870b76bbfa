#!/usr/bin/python3
"""hawser's DNS forwarder side by side with dnsdist, unbound, dnsmasq and glibc, on loopback.

Adapted from ../shared/peers/dns_bench.py (the anchor harness): the same topology,
cases and measurements, with hawser added as one more forwarder, glibc measured through
it too, and a case for hawser's own authoritative answers (the cluster zone).

Run from the repository root, after `cargo build --release`, as root:
    runtime-real/benches/dns/run.sh            # installs the Debian packages, runs, writes tables


Topology (all 127.0.0.0/8):
  127.0.10.1:53  upstream "first"  (knot; made dead in cases ii and iii)
  127.0.10.2:53  upstream "second" (knot; dies mid-run in case iii)
  127.0.20.1:53  dnsdist   (default policy leastOutstanding, health checks)
  127.0.20.2:53  unbound   (forward-zone, iterator only, 2 threads)
  127.0.20.3:53  dnsmasq   (default: last-good server, periodic race)
  127.0.20.4:53  dnsmasq --all-servers (races every query)
  127.0.20.5:53  hawser agent --dns (races with adaptive hedging, probes a dead upstream)
Every forwarder lists the first upstream FIRST.  Zone bench.test has a
wildcard A, so random labels are unique, uncacheable questions.

"Dead" = an nft set in the input hook that silently drops packets to the
address (no ICMP, no send error; TCP SYNs vanish too), which is what a
crashed host or a packet-swallowing server looks like.  (Dropping in the
output hook would make sendto() fail with EPERM, an instant error that
would flatter every client.)

Cases, per forwarder (each restarted fresh):
  i      both upstreams healthy
  ii     first upstream dead for the whole run
  iii    first dead; second dies at +5 s and returns at +10 s (prober timeline
         and a dnsperf per-second throughput timeline)
  cached i, with a 1000-name working set (dnsdist gets a packet cache)
Measures: dig on the first queries after start (cold), dnsperf at a fixed
rate with -v for p50/p99 latency, dnsperf unthrottled for QPS at
saturation, and glibc getaddrinfo with a private resolv.conf (unshare -m).

All processes started are tracked by PID and killed at exit; all loops are
bounded; the nft table is deleted at exit.
"""
import argparse
import ipaddress
import json
import os
import random
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dns_probe  # noqa: E402

PY = "/usr/bin/python3"
A, B = "127.0.10.1", "127.0.10.2"
FWD = {"dnsdist": "127.0.20.1", "unbound": "127.0.20.2", "dnsmasq": "127.0.20.3",
       "dnsmasq-all": "127.0.20.4", "hawser": "127.0.20.5"}
HAWSER = os.environ.get("HAWSER", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                 "../../../target/release/hawser"))
ZONE = "bench.test"
CLK_TCK = os.sysconf("SC_CLK_TCK")
NFT_TABLE = "hawser_anchor_dns"
for _a in [A, B] + list(FWD.values()):
    assert ipaddress.ip_address(_a).is_loopback
STARTED = {}
T0 = time.monotonic()


def log(*a):
    print("[%8.2f]" % (time.monotonic() - T0), *a, flush=True)


def spawn(args, **kw):
    p = subprocess.Popen(args, **kw)
    STARTED[p.pid] = p
    return p


def stop(p, wait=5):
    if p is None:
        return
    if p.poll() is None:
        try:
            p.terminate()
            p.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)
        except ProcessLookupError:
            pass
    STARTED.pop(p.pid, None)


def cleanup():
    for pid, p in list(STARTED.items()):
        if p.poll() is None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        STARTED.pop(pid, None)
    subprocess.run(["nft", "delete", "table", "inet", NFT_TABLE], stderr=subprocess.DEVNULL)


def on_signal(signum, _frame):
    raise SystemExit("signal %d" % signum)


def summary(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return {"n": len(xs), "median": round(statistics.median(xs), 6), "min": round(min(xs), 6),
            "max": round(max(xs), 6)}


def pct(sorted_xs, p):
    if not sorted_xs:
        return None
    k = min(len(sorted_xs) - 1, max(0, int(round(p / 100.0 * len(sorted_xs) + 0.5)) - 1))
    return sorted_xs[k]


def own_ticks():
    """CPU ticks used so far by the long-running processes we started (knot, forwarder)
    plus reaped children (dnsperf, dig)."""
    t = 0
    for pid, p in list(STARTED.items()):
        try:
            with open("/proc/%d/stat" % pid) as f:
                v = f.read().rsplit(")", 1)[1].split()
            t += int(v[11]) + int(v[12])
        except (FileNotFoundError, ProcessLookupError):
            pass
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return t + (ru.ru_utime + ru.ru_stime) * CLK_TCK


def system_busy():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4], sum(v)


# ---------------------------------------------------------------- upstreams

def nft_setup():
    rules = """
table inet %s {
  set dead { type ipv4_addr; }
  chain in {
    type filter hook input priority -10; policy accept;
    ip daddr @dead counter drop
  }
}
""" % NFT_TABLE
    subprocess.run(["nft", "delete", "table", "inet", NFT_TABLE], stderr=subprocess.DEVNULL)
    subprocess.run(["nft", "-f", "-"], input=rules, text=True, check=True)


def nft_cmd(addr, dead):
    verb = "add" if dead else "delete"
    return "nft %s element inet %s dead { %s }" % (verb, NFT_TABLE, addr)


def set_dead(addr, dead):
    subprocess.run(nft_cmd(addr, dead), shell=True, check=False, stderr=subprocess.DEVNULL)


def set_case(first_dead):
    set_dead(A, False)
    set_dead(B, False)
    if first_dead:
        set_dead(A, True)


def start_knot(work):
    kd = os.path.join(work, "knot")
    os.makedirs(kd, exist_ok=True)
    with open(os.path.join(kd, ZONE + ".zone"), "w") as f:
        f.write("""$ORIGIN %s.
$TTL 300
@   SOA ns admin 1 3600 600 86400 300
@   NS  ns
ns  A   %s
www A   192.0.2.10
*   A   192.0.2.1
""" % (ZONE, B))
    with open(os.path.join(kd, "knot.conf"), "w") as f:
        f.write("""server:
    rundir: "{kd}"
    user: root:root
    listen: [ {a}@53, {b}@53 ]
control:
    listen: "{kd}/knot.sock"
database:
    storage: "{kd}/db"
log:
  - target: stderr
    any: warning
zone:
  - domain: {zone}
    storage: "{kd}"
    file: "{zone}.zone"
    journal-content: none
    zonefile-sync: -1
""".format(kd=kd, a=A, b=B, zone=ZONE))
    p = spawn(["knotd", "-c", os.path.join(kd, "knot.conf")], stdout=open(os.path.join(kd, "knot.log"), "w"),
              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    for addr in (A, B):
        wait_answer(addr, 10)
    return p


def wait_answer(addr, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        r = subprocess.run(["dig", "@" + addr, "+tries=1", "+timeout=1", "+short", "www." + ZONE, "A"],
                           capture_output=True, text=True)
        if r.stdout.strip() == "192.0.2.10":
            return True
        time.sleep(0.1)
    raise RuntimeError("no answer from %s within %ss" % (addr, seconds))


def wait_bound(addr, seconds):
    """Wait until something listens on addr:53/udp (without sending a query)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        r = subprocess.run(["ss", "-Hlun", "src", addr + ":53"], capture_output=True, text=True)
        if r.stdout.strip():
            return
        time.sleep(0.05)
    raise RuntimeError("nothing bound on %s:53 after %ss" % (addr, seconds))


# ---------------------------------------------------------------- forwarders

# Extra lines for hawser's [dns] table (--hawser-dns).
HAWSER_DNS_TOML = ""


def start_forwarder(kind, work, cached):
    d = os.path.join(work, kind)
    os.makedirs(d, exist_ok=True)
    addr = FWD[kind]
    out = open(os.path.join(d, "stdout.log"), "a")
    if kind == "dnsdist":
        conf = os.path.join(d, "dnsdist.conf")
        check = ('checkName="www.%s.", checkType="A", mustResolve=true' % ZONE)
        with open(conf, "w") as f:
            f.write('setSecurityPollSuffix("")\n'  # no secpoll queries to the internet
                    'setLocal("%s:53")\nsetACL({"127.0.0.0/8"})\n'
                    'newServer({address="%s:53", name="first", order=1, %s})\n'
                    'newServer({address="%s:53", name="second", order=2, %s})\n'
                    % (addr, A, check, B, check))
            if cached:
                f.write('pc = newPacketCache(100000)\ngetPool(""):setCache(pc)\n')
        args = ["dnsdist", "--supervised", "--disable-syslog", "-C", conf]
    elif kind == "unbound":
        conf = os.path.join(d, "unbound.conf")
        with open(conf, "w") as f:
            f.write("""server:
  interface: {addr}
  port: 53
  do-ip6: no
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "{d}"
  pidfile: "{d}/unbound.pid"
  use-syslog: no
  logfile: ""
  verbosity: 0
  num-threads: 2
  so-reuseport: yes
  module-config: "iterator"
  do-not-query-localhost: no
  access-control: 127.0.0.0/8 allow
  local-zone: "." refuse
  local-zone: "{zone}." transparent
forward-zone:
  name: "{zone}."
  forward-addr: {a}
  forward-addr: {b}
""".format(addr=addr, d=d, zone=ZONE, a=A, b=B))
        args = ["unbound", "-d", "-c", conf]
    elif kind == "hawser":
        # One agent, alone: its DNS service forwards everything outside its zone.
        args = [HAWSER, "agent", "--name", "dnsbench", "--listen", addr + ":7700",
                "--admin", addr + ":7701", "--data-dir", os.path.join(d, "data"),
                "--cookie", "dns-bench-%016x" % random.getrandbits(64),
                "--dns", addr + ":53", "--dns-upstream", "%s,%s" % (A, B)]
        conf = os.path.join(d, "hawser.toml")
        with open(conf, "w") as f:
            f.write("[dns]\n" + HAWSER_DNS_TOML)
            if not cached:
                # Random names miss anyway; no cache is the like-for-like with dnsdist's.
                f.write("cache_entries = 0\n")
        args += ["--config", conf]
    elif kind.startswith("dnsmasq"):
        args = ["dnsmasq", "-k", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--no-poll",
                "--bind-interfaces", "--listen-address=" + addr, "--port=53",
                "--server=" + A, "--server=" + B, "--pid-file=" + os.path.join(d, "dnsmasq.pid"),
                "--user=root", "--group=root", "--log-facility=-",
                "--cache-size=%d" % (10000 if cached else 150)]
        if kind == "dnsmasq-all":
            args.append("--all-servers")
    else:
        raise ValueError(kind)
    p = spawn(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    out.close()
    wait_bound(addr, 10)
    time.sleep(0.2)
    if p.poll() is not None:
        raise RuntimeError("%s exited: see %s" % (kind, d))
    return p


# ---------------------------------------------------------------- measurements

def names_file(work, count, tag, distinct=None):
    path = os.path.join(work, "names-%s.txt" % tag)
    with open(path, "w") as f:
        if distinct:
            base = ["c%s-%d.%s A\n" % (tag, i, ZONE) for i in range(distinct)]
            f.writelines(base)
        else:
            f.writelines("u%s-%d.%s A\n" % (tag, i, ZONE) for i in range(count))
    return path


def dig_cold(addr, count, timeout):
    out = []
    tag = "%06x" % random.getrandbits(24)
    for i in range(count):
        t = time.monotonic()
        r = subprocess.run(["dig", "@" + addr, "+tries=1", "+timeout=%d" % timeout, "d%s-%d.%s" % (tag, i, ZONE),
                            "A"], capture_output=True, text=True, timeout=timeout + 5)
        wall = time.monotonic() - t
        m = re.search(r"Query time: (\d+) msec", r.stdout)
        st = re.search(r"status: (\w+)", r.stdout)
        out.append({"wall_s": round(wall, 4), "query_ms": int(m.group(1)) if m else None,
                    "status": st.group(1) if st else "timeout"})
    return out


def run_dnsperf(addr, datafile, seconds, rate=None, verbose=False, stats=None, clients=4, outstanding=100,
                timeout=2, loop=True):
    args = ["dnsperf", "-s", addr, "-d", datafile, "-l", str(seconds), "-c", str(clients),
            "-q", str(outstanding), "-t", str(timeout)]
    if not loop:
        args += ["-n", "1"]
    if rate:
        args += ["-Q", str(rate)]
    if verbose:
        args += ["-v"]
    if stats:
        args += ["-S", str(stats)]
    b0, o0 = system_busy(), own_ticks()
    r = subprocess.run(args, capture_output=True, text=True, timeout=seconds + timeout + 30)
    b1, o1 = system_busy(), own_ticks()
    txt = r.stdout
    total = max(1, b1[1] - b0[1])
    # busy_frac: whole machine; others_frac: CPU used by processes we did not start
    res = {"busy_frac": round((b1[0] - b0[0]) / total, 3),
           "others_frac": round(max(0.0, (b1[0] - b0[0]) - (o1 - o0)) / total, 3)}
    for key, rx in (("sent", r"Queries sent:\s+(\d+)"), ("completed", r"Queries completed:\s+(\d+)"),
                    ("lost", r"Queries lost:\s+(\d+)"), ("qps", r"Queries per second:\s+([\d.]+)"),
                    ("avg_lat_s", r"Average Latency \(s\):\s+([\d.]+)")):
        m = re.search(rx, txt)
        res[key] = float(m.group(1)) if m else None
    rc = re.search(r"Response codes:\s+(.*)", txt)
    res["rcodes"] = rc.group(1).strip() if rc else None
    if verbose:
        lats = []
        for line in txt.splitlines():
            if line.startswith("> "):
                parts = line.split()
                try:
                    if parts[1] == "NOERROR":
                        lats.append(float(parts[-1]))
                except (ValueError, IndexError):
                    pass
        lats.sort()
        res.update({"answered": len(lats), "p50_ms": round(1e3 * pct(lats, 50), 3) if lats else None,
                    "p99_ms": round(1e3 * pct(lats, 99), 3) if lats else None,
                    "p999_ms": round(1e3 * pct(lats, 99.9), 3) if lats else None,
                    "max_ms": round(1e3 * lats[-1], 3) if lats else None})
    if stats:
        res["timeline"] = [float(x) for x in re.findall(r"^\s*[\d.]+:\s+([\d.]+)\s*$", r.stderr + txt, re.M)]
    if r.returncode != 0:
        res["error"] = (r.stderr or txt)[-500:]
    return res


def measure_case(kind, work, case, runs, sat_s, lat_s, lat_rate, cold_n):
    res = {"cold_dig": None, "latency": [], "saturation": []}
    p = start_forwarder(kind, work, cached=(case == "cached"))
    try:
        addr = FWD[kind]
        if case != "cached":
            res["cold_dig"] = dig_cold(addr, cold_n, 5)
        if case == "cached":
            warm = names_file(work, 0, "warm", distinct=1000)
            run_dnsperf(addr, warm, 2, loop=False)
            lat_file = sat_file = warm
        for r in range(runs):
            if case != "cached":
                lat_file = names_file(work, int(lat_rate * lat_s * 1.2), "%s%s-l%d" % (kind, case, r))
            res["latency"].append(run_dnsperf(addr, lat_file, lat_s, rate=lat_rate, verbose=True))
            if case != "cached":
                sat_file = names_file(work, 1500000, "%s%s-s%d" % (kind, case, r))
            res["saturation"].append(run_dnsperf(addr, sat_file, sat_s))
            log("   %s %s run %d: lat p50=%s p99=%s lost=%s | sat qps=%s lost=%s" % (
                kind, case, r, res["latency"][-1].get("p50_ms"), res["latency"][-1].get("p99_ms"),
                res["latency"][-1].get("lost"), res["saturation"][-1].get("qps"), res["saturation"][-1].get("lost")))
    finally:
        stop(p)
    res["summary"] = {
        "qps": summary([x["qps"] for x in res["saturation"]]),
        "sat_avg_lat_ms": summary([1e3 * x["avg_lat_s"] for x in res["saturation"] if x["avg_lat_s"] is not None]),
        "sat_lost": summary([x["lost"] for x in res["saturation"]]),
        "p50_ms": summary([x["p50_ms"] for x in res["latency"]]),
        "p99_ms": summary([x["p99_ms"] for x in res["latency"]]),
        "lat_lost": summary([x["lost"] for x in res["latency"]]),
    }
    return res


def timeline_summary(recs, t_down, t_up, bin_s=0.5):
    """recs: [t_send, latency|None, rcode|None]."""
    def ok(r):
        return r[1] is not None and r[2] == 0
    before = [r for r in recs if r[0] < t_down]
    during = [r for r in recs if t_down <= r[0] < t_up]
    after = [r for r in recs if r[0] >= t_up]
    first_ok_after = next((r[0] + r[1] - t_up for r in after if ok(r)), None)
    # first bin after t_up from which every later 1 s window is >= 99% ok
    recovered = None
    end = max((r[0] for r in recs), default=t_up)
    t = t_up
    while t + 1.0 <= end + 1e-9:
        win = [r for r in recs if t <= r[0] < t + 1.0]
        if win and sum(ok(r) for r in win) >= 0.99 * len(win):
            if all(sum(ok(r) for r in w) >= 0.99 * len(w)
                   for w in ([x for x in recs if s <= x[0] < s + 1.0] for s in frac_range(t, end - 1.0, bin_s)) if w):
                recovered = t - t_up
                break
        t += bin_s

    def frac(rs):
        return round(sum(ok(r) for r in rs) / len(rs), 4) if rs else None
    lat_before = sorted(r[1] for r in before if ok(r))
    return {"ok_before": frac(before), "ok_during": frac(during), "ok_after": frac(after),
            "servfail_during": sum(1 for r in during if r[2] == 2),
            "timeouts_during": sum(1 for r in during if r[1] is None),
            "first_ok_after_restore_s": round(first_ok_after, 4) if first_ok_after is not None else None,
            "recovered_after_restore_s": round(recovered, 3) if recovered is not None else None,
            "p50_before_ms": round(1e3 * pct(lat_before, 50), 3) if lat_before else None,
            "p99_before_ms": round(1e3 * pct(lat_before, 99), 3) if lat_before else None}


def frac_range(a, b, step):
    x = a
    while x <= b + 1e-9:
        yield x
        x += step


def measure_flap(kind, work, runs, rate, pre, down, post, sat):
    out = {"prober": [], "dnsperf_timeline": None}
    t_down, t_up = pre, pre + down
    for r in range(runs):
        set_case(first_dead=True)
        p = start_forwarder(kind, work, cached=False)
        try:
            dns_probe.probe(FWD[kind], 53, ZONE, rate, 2.0, 2.0)  # warm: learn that "first" is dead
            res = dns_probe.probe(FWD[kind], 53, ZONE, rate, pre + down + post, 2.0,
                                  [(t_down, nft_cmd(B, True)), (t_up, nft_cmd(B, False))])
        finally:
            set_dead(B, False)
            stop(p)
        s = timeline_summary(res["records"], t_down, t_up)
        s["actions"] = res["actions"]
        out["prober"].append(s)
        log("   %s flap run %d: %s" % (kind, r, s))
    if sat:
        set_case(first_dead=True)
        p = start_forwarder(kind, work, cached=False)
        try:
            dns_probe.probe(FWD[kind], 53, ZONE, rate, 2.0, 2.0)
            f = names_file(work, 3000000, "%s-flap" % kind)
            timers = [threading.Timer(t_down, set_dead, (B, True)), threading.Timer(t_up, set_dead, (B, False))]
            for t in timers:
                t.start()
            out["dnsperf_timeline"] = run_dnsperf(FWD[kind], f, int(pre + down + post), stats=1)
            for t in timers:
                t.join(timeout=30)
        finally:
            set_dead(B, False)
            stop(p)
        log("   %s flap dnsperf timeline: %s" % (kind, out["dnsperf_timeline"].get("timeline")))
    out["summary"] = {k: summary([x[k] for x in out["prober"]]) for k in
                      ("ok_during", "first_ok_after_restore_s", "recovered_after_restore_s", "ok_after")}
    return out


def measure_auth(work, runs, sat_s, lat_s, lat_rate, names=1000):
    """hawser's authoritative answers for its own cluster zone: `names` user records,
    each queried from the node's replica with no network hop."""
    import urllib.request
    p = start_forwarder("hawser", work, cached=False)
    addr = FWD["hawser"]
    try:
        for i in range(names):
            body = json.dumps({"name": "svc%d" % i, "type": "A", "value": "198.18.%d.%d" % (i // 250, i % 250 + 1)})
            req = urllib.request.Request("http://%s:7701/v1/dns/records" % addr, data=body.encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
            urllib.request.urlopen(req, timeout=30).read()
        path = os.path.join(work, "names-auth.txt")
        with open(path, "w") as f:
            f.writelines("svc%d.hawser A\n" % i for i in range(names))
        lat, sat = [], []
        for r in range(runs):
            lat.append(run_dnsperf(addr, path, lat_s, rate=lat_rate, verbose=True))
            sat.append(run_dnsperf(addr, path, sat_s))
            log("   hawser auth run %d: p50=%s p99=%s qps=%s rcodes=%s" % (
                r, lat[-1].get("p50_ms"), lat[-1].get("p99_ms"), sat[-1].get("qps"), sat[-1].get("rcodes")))
    finally:
        stop(p)
    return {"latency": lat, "saturation": sat, "summary": {
        "qps": summary([x["qps"] for x in sat]), "p50_ms": summary([x["p50_ms"] for x in lat]),
        "p99_ms": summary([x["p99_ms"] for x in lat])}}


# ---------------------------------------------------------------- glibc

def glibc_run(work, name, resolv_lines, probe_args, timeout):
    conf = os.path.join(work, "resolv-%s.conf" % name)
    with open(conf, "w") as f:
        f.write("\n".join(resolv_lines) + "\n")
    script = ("mount --bind %s /etc/resolv.conf && exec %s %s/glibc_probe.py %s"
              % (conf, PY, HERE, " ".join(probe_args)))
    p = spawn(["unshare", "-m", "--propagation", "private", "sh", "-c", script], stdout=subprocess.PIPE,
              stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=timeout)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        STARTED.pop(p.pid, None)
    if p.returncode != 0:
        raise RuntimeError("glibc probe failed: " + err[-400:])
    return json.loads(out)


def glibc_summary(recs):
    lats = sorted(r[1] for r in recs if r[2] is None)
    errs = sum(1 for r in recs if r[2] is not None)
    return {"lookups": len(recs), "errors": errs,
            "p50_ms": round(1e3 * pct(lats, 50), 2) if lats else None,
            "p99_ms": round(1e3 * pct(lats, 99), 2) if lats else None,
            "max_ms": round(1e3 * lats[-1], 2) if lats else None,
            "err_lat_ms": sorted(round(1e3 * r[1]) for r in recs if r[2] is not None)[:5]}


def measure_glibc(work, runs, seq_n, flap, pre, down, post, forwarders):
    out = {}
    both = ["nameserver " + A, "nameserver " + B]
    variants = [("default", both), ("timeout1", both + ["options timeout:1"]),
                ("timeout1_rotate", both + ["options timeout:1 rotate"])]
    for case, first_dead in (("i", False), ("ii", True)):
        set_case(first_dead)
        for vname, lines in variants:
            if case == "i" and vname != "default":
                continue
            n = seq_n if case == "i" else (4 if vname == "default" else 12)
            rs = []
            for r in range(runs):
                res = glibc_run(work, "%s-%s" % (case, vname), lines,
                                ["--sequential", str(n), "--seconds", "60"], timeout=120)
                s = glibc_summary(res["records"])
                s["lookups_per_s"] = round(len(res["records"]) / res["wall_s"], 2)
                rs.append(s)
                log("   glibc %s %s run %d: %s" % (case, vname, r, s))
            out["%s_%s" % (case, vname)] = {"runs": rs, "summary": {
                k: summary([x[k] for x in rs]) for k in ("p50_ms", "p99_ms", "max_ms", "lookups_per_s")}}
    # via a local forwarder (the deployment we are building), first upstream dead
    for via in forwarders:
        set_case(True)
        p = start_forwarder(via, work, cached=False)
        try:
            dns_probe.probe(FWD[via], 53, ZONE, 50, 3.0, 2.0)
            rs = []
            for r in range(runs):
                res = glibc_run(work, "ii-via-%s" % via, ["nameserver " + FWD[via]],
                                ["--sequential", str(seq_n), "--seconds", "30"], timeout=60)
                s = glibc_summary(res["records"])
                s["lookups_per_s"] = round(len(res["records"]) / res["wall_s"], 2)
                rs.append(s)
                log("   glibc ii via %s run %d: %s" % (via, r, s))
            out["ii_via_" + via] = {"runs": rs, "summary": {
                k: summary([x[k] for x in rs]) for k in ("p50_ms", "p99_ms", "max_ms", "lookups_per_s")}}
        finally:
            stop(p)
    if flap:
        rs = []
        t_down, t_up = pre, pre + down
        for r in range(runs):
            set_case(True)
            timers = [threading.Timer(t_down, set_dead, (B, True)), threading.Timer(t_up, set_dead, (B, False))]
            for t in timers:
                t.start()
            try:
                res = glibc_run(work, "iii-timeout1", both + ["options timeout:1"],
                                ["--rate", "10", "--seconds", str(pre + down + post)], timeout=pre + down + post + 90)
            finally:
                for t in timers:
                    t.cancel()
                set_dead(B, False)
            recs = [[x[0], x[1] if x[2] is None else None, 0 if x[2] is None else 2] for x in res["records"]]
            s = timeline_summary(recs, t_down, t_up)
            rs.append(s)
            log("   glibc iii timeout1 run %d: %s" % (r, s))
        out["iii_timeout1"] = {"runs": rs, "summary": {
            k: summary([x[k] for x in rs]) for k in ("ok_during", "first_ok_after_restore_s",
                                                      "recovered_after_restore_s", "p50_before_ms")}}
    return out


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--forwarders", nargs="+",
                    default=["hawser", "dnsdist", "unbound", "dnsmasq", "dnsmasq-all"])
    ap.add_argument("--cases", nargs="+", default=["baseline", "i", "ii", "cached", "iii", "glibc", "auth"])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sat-seconds", type=int, default=8)
    ap.add_argument("--lat-seconds", type=int, default=8)
    ap.add_argument("--lat-rate", type=int, default=1000)
    ap.add_argument("--cold-queries", type=int, default=5)
    ap.add_argument("--flap-rate", type=float, default=100)
    ap.add_argument("--flap", nargs=3, type=float, default=[5, 5, 15], metavar=("PRE", "DOWN", "POST"))
    ap.add_argument("--glibc-seq", type=int, default=200)
    ap.add_argument("--workdir", default="/tmp/hawser-dns-bench")
    ap.add_argument("--out", default="dns-results.json")
    ap.add_argument("--nice", type=int, default=-10)
    ap.add_argument("--hawser-dns", default="", metavar="TOML",
                    help="extra lines for hawser's [dns] table, e.g. 'shards = 1'")
    ap.add_argument("--max-seconds", type=int, default=3600)
    a = ap.parse_args()
    global HAWSER_DNS_TOML
    HAWSER_DNS_TOML = "".join(line.strip() + "\n" for line in a.hawser_dns.split(";") if line.strip())
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):
        signal.signal(sig, on_signal)
    signal.alarm(a.max_seconds)
    if a.nice:
        os.nice(a.nice)
    if os.path.exists(a.workdir):
        shutil.rmtree(a.workdir)
    os.makedirs(a.workdir)
    vers = {}
    for prog, args in (("hawser", [HAWSER, "--version"]), ("dnsdist", ["dnsdist", "--version"]), ("unbound", ["unbound", "-V"]),
                       ("dnsmasq", ["dnsmasq", "--version"]), ("knot", ["knotd", "--version"]),
                       ("dnsperf", ["dnsperf", "-h"]), ("glibc", ["ldd", "--version"])):
        r = subprocess.run(args, capture_output=True, text=True)
        txt = (r.stdout + r.stderr).strip().splitlines()
        vers[prog] = next((ln for ln in txt if re.search(r"\d+\.\d+", ln)), "")
    results = {"versions": vers, "nproc": os.cpu_count(), "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
               "params": vars(a)}

    def save():
        with open(a.out, "w") as f:
            json.dump(results, f, indent=1, sort_keys=True)

    knot = None
    try:
        nft_setup()
        knot = start_knot(a.workdir)
        # sanity: the dead mechanism really is silent
        set_dead(A, True)
        d = dig_cold(A, 1, 1)[0]
        set_dead(A, False)
        results["dead_check"] = d
        log("dead check (expect timeout):", d)
        if "baseline" in a.cases:
            lat, sat = [], []
            for r in range(a.runs):
                lat.append(run_dnsperf(B, names_file(a.workdir, int(a.lat_rate * a.lat_seconds * 1.2), "kl%d" % r),
                                       a.lat_seconds, rate=a.lat_rate, verbose=True))
                sat.append(run_dnsperf(B, names_file(a.workdir, 3000000, "ks%d" % r), a.sat_seconds))
                log("   knot direct run %d: p50=%s p99=%s qps=%s" % (r, lat[-1].get("p50_ms"), lat[-1].get("p99_ms"),
                                                                      sat[-1].get("qps")))
            results["knot_direct"] = {"latency": lat, "saturation": sat, "summary": {
                "qps": summary([x["qps"] for x in sat]), "p50_ms": summary([x["p50_ms"] for x in lat]),
                "p99_ms": summary([x["p99_ms"] for x in lat])}}
            save()
        for case in ("i", "ii", "cached"):
            if case not in a.cases:
                continue
            set_case(first_dead=(case == "ii"))
            for kind in a.forwarders:
                log("case %s: %s" % (case, kind))
                results.setdefault("case_" + case, {})[kind] = measure_case(
                    kind, a.workdir, case, a.runs, a.sat_seconds, a.lat_seconds, a.lat_rate, a.cold_queries)
                save()
        if "iii" in a.cases:
            pre, down, post = a.flap
            for kind in a.forwarders:
                log("case iii: %s" % kind)
                results.setdefault("case_iii", {})[kind] = measure_flap(kind, a.workdir, a.runs, a.flap_rate,
                                                                        pre, down, post, sat=True)
                save()
        if "auth" in a.cases and "hawser" in a.forwarders:
            log("case auth: hawser's cluster zone")
            results["hawser_auth"] = measure_auth(a.workdir, a.runs, a.sat_seconds, a.lat_seconds, a.lat_rate)
            save()
        if "glibc" in a.cases:
            log("glibc")
            pre, down, post = a.flap
            results["glibc"] = measure_glibc(a.workdir, a.runs, a.glibc_seq, True, pre, down, post,
                                             a.forwarders)
            save()
    finally:
        stop(knot)
        cleanup()
        results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        save()


if __name__ == "__main__":
    main()
