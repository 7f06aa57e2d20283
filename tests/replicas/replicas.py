#!/usr/bin/env python3
"""The shipped topology on loopback: N `topicd serve` on one PostgreSQL store,
behind nginx configured from docker/nginx.conf.template, driven only through
nginx as clients would. tests/replicas/run.sh starts it inside
scripts/with-pg.sh (TOPICD_TEST_PG, TOPICD_TEST_PG_CTL).

  1. cancel: a job that runs until cancelled, cancelled through another
     replica than the one running it (N >= 2; with N = 1, the same one);
  2. fairness: client A holds 40 queued jobs, client B submits one after them:
     B's job is among the next 3 jobs the fleet starts (by started_at);
  3. load: 4 clients submit 200 small jobs (each with an Idempotency-Key) and
     poll them through nginx; meanwhile a replica is killed with kill -9 in
     the middle of a fit and restarted, and PostgreSQL is restarted once.
     Every job ends succeeded, once: one job per key, one "running ->
     succeeded" line in all the replicas' logs together, and a second
     attempt only for the jobs that were running on the killed replica. No
     poll answers 404, nor a 5xx other than 503 with Retry-After.

The last line is "N passed, N failed".
"""
import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
T0 = time.monotonic()
PASS = 0
FAIL = 0


def say(msg):
    print("replicas [%3ds] %s" % (time.monotonic() - T0, msg), flush=True)


def check(what, ok):
    global PASS, FAIL
    if ok:
        PASS += 1
        say("ok   " + what)
    else:
        FAIL += 1
        say("FAIL " + what)
    return ok


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Http:
    """One keep-alive connection to 127.0.0.1:port, reopened after an error."""

    def __init__(self, port, timeout=30):
        self.port = port
        self.timeout = timeout
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        """(status, headers as a dict with lower-case names, body bytes);
        raises OSError or http.client.HTTPException when the connection fails."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        h = dict(headers or {})
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        try:
            self.conn.request(method, path, body=body, headers=h)
            r = self.conn.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = None
            raise
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def json(self, method, path, body=None, headers=None):
        st, h, data = self.request(method, path, body, headers)
        try:
            return st, h, json.loads(data) if data else None
        except ValueError:
            return st, h, None


def small_docs(seed, n=300, words=30):
    """Four topics of 40 words each; a document draws mostly from one."""
    r = random.Random(seed)
    vocab = [["%s%d" % (p, i) for i in range(40)] for p in ("fruit", "music", "tree", "sport")]
    return [" ".join(r.choice(vocab[d % 4] if r.random() < 0.8 else vocab[r.randrange(4)])
                     for _ in range(words)) for d in range(n)]


def small_spec(seed, max_iter):
    return {"documents": small_docs(seed), "seed": seed,
            "model": {"method": "nmf", "n_topics": 4, "tol": 0, "max_iter": max_iter}}


class Fleet:
    def __init__(self, args, work):
        self.args = args
        self.work = work
        self.n = args.replicas
        self.ports = [free_port() for _ in range(self.n)]
        self.procs = [None] * self.n
        self.logs = [os.path.join(work, "replica-%d.log" % i) for i in range(self.n)]
        self.nginx = None
        self.nginx_port = free_port()
        self.nginx_dir = os.path.join(work, "nginx")

    def start_replica(self, i):
        env = dict(os.environ, TOPICD_STORE=self.args.store)
        data = os.path.join(self.work, "data-%d" % i)
        os.makedirs(data, exist_ok=True)
        cmd = [self.args.topicd, "serve", "--bind", "127.0.0.1", "--port", str(self.ports[i]),
               "--data-dir", data, "--workers", str(self.args.workers), "--http-threads", "2",
               "--shutdown-grace", "2", "--job-retention", "0", "--log-level", "info"]
        with open(self.logs[i], "ab") as log:
            self.procs[i] = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                                             stdout=log, stderr=log)

    def wait_ready(self, i, timeout=30):
        """None once /readyz answers 200, else why not."""
        end = time.monotonic() + timeout
        c = Http(self.ports[i], timeout=2)
        while time.monotonic() < end:
            if self.procs[i].poll() is not None:
                return "exited with status %d" % self.procs[i].returncode
            try:
                if c.request("GET", "/readyz")[0] == 200:
                    return None
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.05)
        return "not ready within %d s" % timeout

    def kill9(self, i):
        self.procs[i].send_signal(signal.SIGKILL)
        self.procs[i].wait()

    def start_nginx(self):
        os.makedirs(self.nginx_dir, exist_ok=True)
        conf = os.path.join(self.nginx_dir, "nginx.conf")
        ups = ",".join("127.0.0.1:%d" % p for p in self.ports)
        subprocess.run([os.path.join(ROOT, "docker", "render-nginx.sh"), "-l",
                        "127.0.0.1:%d" % self.nginx_port, "-a", "access.log", ups, conf],
                       check=True)
        with open(os.path.join(self.work, "nginx.log"), "ab") as log:
            self.nginx = subprocess.Popen([self.args.nginx, "-p", self.nginx_dir, "-c", conf,
                                           "-e", "stderr"],
                                          stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        c = Http(self.nginx_port, timeout=2)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                if c.request("GET", "/healthz")[0] == 200:
                    return True
            except (OSError, http.client.HTTPException):
                pass
            if self.nginx.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def stop(self):
        for p in self.procs + [self.nginx]:
            if p and p.poll() is None:
                p.terminate()
        for p in self.procs + [self.nginx]:
            if p:
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

    def events(self, i, upto=None):
        """The JSON lines of replica i's log (its first `upto` bytes)."""
        out = []
        with open(self.logs[i], "rb") as f:
            data = f.read() if upto is None else f.read(upto)
        for line in data.splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def transitions(self, upto=None):
        """[(replica, event)] of every "job transition" line in the logs."""
        return [(i, e) for i in range(self.n) for e in self.events(i, upto and upto[i])
                if e.get("msg") == "job transition"]

    def running_on(self, job_id):
        """The replica whose log last put job_id in "running" with no end since, or None."""
        where = None
        for i, e in self.transitions():
            if e.get("job_id") != job_id:
                continue
            if e.get("to") == "running":
                where = i
            elif e.get("from") == "running":
                where = None
        return where


class Stats:
    """What every client saw, for the assertions."""

    def __init__(self):
        self.lock = threading.Lock()
        self.polls = {}
        self.bad = []
        self.ids = {}
        self.ends = {}
        self.done = 0
        self.submit_retries = {}

    def poll(self, status, retry_after, what):
        with self.lock:
            self.polls[status] = self.polls.get(status, 0) + 1
            if status == 404 or (status >= 500 and not (status == 503 and retry_after)):
                self.bad.append("%s: %d%s" % (what, status,
                                              "" if retry_after else " without Retry-After"))

    def note(self, bad):
        with self.lock:
            self.bad.append(bad)

    def retry(self, why):
        with self.lock:
            self.submit_retries[why] = self.submit_retries.get(why, 0) + 1


def submit(c, stats, spec, key, client, deadline):
    """POST /v1/jobs through nginx until it is accepted: the job id, or None.
    503 (Retry-After) and 502 (maybe applied) are repeated with the same key."""
    headers = {"Idempotency-Key": key, "X-Client-Id": client}
    body = json.dumps(spec).encode()
    headers["Content-Type"] = "application/json"
    while time.monotonic() < deadline:
        try:
            st, h, data = c.request("POST", "/v1/jobs", body, headers)
        except (OSError, http.client.HTTPException) as e:
            stats.retry("connection: %s" % type(e).__name__)
            time.sleep(0.2)
            continue
        if st in (200, 201, 202):
            return json.loads(data)["id"]
        if st == 503 and "retry-after" in h:
            stats.retry("503")
            time.sleep(min(1.0, float(h["retry-after"])))
            continue
        if st == 502:
            stats.retry("502")
            time.sleep(0.2)
            continue
        stats.note("POST /v1/jobs (%s): %d %s" % (key, st, data[:200]))
        return None
    stats.note("POST /v1/jobs (%s): not accepted in time" % key)
    return None


def poll_state(c, stats, job_id, what="poll"):
    """The job's JSON through nginx, or None (recorded in stats)."""
    try:
        st, h, data = c.request("GET", "/v1/jobs/" + job_id)
    except (OSError, http.client.HTTPException) as e:
        stats.note("%s %s: nginx connection failed: %s" % (what, job_id, e))
        return None
    stats.poll(st, "retry-after" in h, "GET /v1/jobs/" + job_id)
    return json.loads(data) if st == 200 else None


def client_main(fleet, stats, cid, jobs, inflight, max_iter, deadline):
    c = Http(fleet.nginx_port)
    pending = list(range(jobs))
    out = {}
    while (pending or out) and time.monotonic() < deadline:
        while pending and len(out) < inflight:
            i = pending.pop(0)
            key = "load-%d-%d" % (cid, i)
            jid = submit(c, stats, small_spec(cid * 1000 + i, max_iter), key,
                         "client-%d" % cid, deadline)
            if jid:
                with stats.lock:
                    stats.ids.setdefault(key, set()).add(jid)
                out[key] = jid
        for key, jid in list(out.items()):
            j = poll_state(c, stats, jid)
            if j and j["state"] in ("succeeded", "failed", "cancelled"):
                with stats.lock:
                    stats.ends[jid] = j
                    stats.done += 1
                del out[key]
        time.sleep(0.05)
    if pending or out:
        stats.note("client %d: %d jobs unfinished at the deadline" % (cid, len(pending) + len(out)))


def wait_state(c, stats, job_id, states, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        j = poll_state(c, stats, job_id, "wait")
        if j and j["state"] in states:
            return j
        time.sleep(0.05)
    return None


def wait_running_on(fleet, job_id, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r = fleet.running_on(job_id)
        if r is not None:
            return r
        time.sleep(0.05)
    return None


def long_spec(seed):
    """An NMF with tol 0 and no useful iteration cap: runs until cancelled."""
    return small_spec(seed, 1000000000)


def test_cancel(fleet, stats):
    c = Http(fleet.nginx_port)
    jid = submit(c, stats, long_spec(7), "cancel-1", "cancel", time.monotonic() + 30)
    where = jid and wait_running_on(fleet, jid, 30)
    if not check("cancel: the long job runs (on replica %s)" % where, where is not None):
        return
    other = (where + 1) % fleet.n
    t = time.monotonic()
    st, _, _ = Http(fleet.ports[other]).request("POST", "/v1/jobs/%s:cancel" % jid)
    j = wait_state(c, stats, jid, ("cancelled",), 10)
    secs = time.monotonic() - t
    stopped = any(i == where and e.get("job_id") == jid and e.get("to") == "cancelled"
                  for i, e in fleet.transitions())
    if fleet.n == 1:
        say("skip the cross-replica cancel: one replica (N=1); cancelled on the one running it")
    check("cancel through replica %d (%d) stops the job running on replica %d in %.2f s"
          % (other, st, where, secs), st in (200, 202) and j is not None and secs < 5 and stopped)


def test_fairness(fleet, stats, max_iter):
    """Every worker busy with a job that runs until cancelled; A submits 40
    jobs, then B one; the busy jobs are cancelled: B's is among the next 3
    jobs started."""
    c = Http(fleet.nginx_port)
    deadline = time.monotonic() + 60
    busy = [submit(c, stats, long_spec(100 + k), "busy-%d" % k, "busy", deadline)
            for k in range(fleet.n * fleet.args.workers)]
    ok = all(busy) and all(wait_running_on(fleet, b, 30) is not None for b in busy)
    if not check("fairness: %d jobs keep every worker busy" % len(busy), ok):
        return
    a = [submit(c, stats, small_spec(2000 + k, max_iter), "fair-a-%d" % k, "fair-a", deadline)
         for k in range(40)]
    b = submit(c, stats, small_spec(3000, max_iter), "fair-b", "fair-b", deadline)
    for jid in busy:
        c.request("POST", "/v1/jobs/%s:cancel" % jid)
    ends = [wait_state(c, stats, jid, ("succeeded", "failed", "cancelled"), 120)
            for jid in a + [b]]
    if not check("fairness: A's 40 jobs and B's succeeded",
                 all(e and e["state"] == "succeeded" for e in ends)):
        return
    order = sorted(ends, key=lambda e: e["started_at"])
    pos = [e["id"] for e in order].index(b) + 1
    check("fairness: B's job started %s among the 41 (must be in the first 3)" % pos, pos <= 3)


def test_load(fleet, stats, args):
    deadline = time.monotonic() + args.load_timeout
    total = args.clients * args.jobs
    threads = [threading.Thread(target=client_main,
                                args=(fleet, stats, k, args.jobs, args.inflight, args.max_iter,
                                      deadline), daemon=True) for k in range(args.clients)]
    t = time.monotonic()
    for th in threads:
        th.start()

    def wait_done(frac):
        while stats.done < frac * total and time.monotonic() < deadline:
            time.sleep(0.05)

    # kill -9 in the middle of a fit: a job that runs ~3 s, killed 0.5 s in.
    wait_done(0.2)
    c = Http(fleet.nginx_port)
    victim = submit(c, stats, small_spec(4000, 8000), "victim", "victim", deadline)
    where = victim and wait_running_on(fleet, victim, 60)
    killed_at = None
    if check("load: the victim job %s runs on replica %s" % (victim, where), where is not None):
        time.sleep(0.5)
        j = poll_state(c, stats, victim, "victim")
        killed_at = [os.path.getsize(p) for p in fleet.logs]
        fleet.kill9(where)
        say("kill -9 replica %d at %d of %d jobs done (victim %s)"
            % (where, stats.done, total, j and j["state"]))
        time.sleep(1)
        fleet.start_replica(where)
        why = fleet.wait_ready(where)
        check("load: replica %d restarted (%s)" % (where, why or "ready"), why is None)
    wait_done(0.55)
    pg_ctl = os.environ.get("TOPICD_TEST_PG_CTL")
    r0 = time.monotonic()
    rc = subprocess.run(pg_ctl + " restart", shell=True, stdout=subprocess.DEVNULL,
                        stderr=subprocess.STDOUT).returncode
    check("load: PostgreSQL restarted at %d of %d jobs done, in %.1f s"
          % (stats.done, total, time.monotonic() - r0), rc == 0)
    for th in threads:
        th.join(max(0.0, deadline - time.monotonic()))
    secs = time.monotonic() - t
    vj = victim and wait_state(c, stats, victim, ("succeeded", "failed", "cancelled"), 60)
    say("load: %d jobs in %.1f s; polls by status %s; submissions repeated %s"
        % (stats.done, secs, dict(sorted(stats.polls.items())), stats.submit_retries or "never"))

    check("load: one job per Idempotency-Key (%d keys)" % len(stats.ids),
          len(stats.ids) == total and all(len(v) == 1 for v in stats.ids.values()))
    states = {}
    for j in stats.ends.values():
        states[j["state"]] = states.get(j["state"], 0) + 1
    # A job that starts or finishes while PostgreSQL restarts must still
    # succeed: its last write is tried again once the store is back.
    check("load: all %d jobs succeeded (%s)" % (total, states),
          states.get("succeeded", 0) == total and len(stats.ends) == total)
    check("load: the victim succeeded after a second attempt (%s, attempts %s)"
          % (vj and vj["state"], vj and vj["attempts"]),
          vj is not None and vj["state"] == "succeeded" and vj["attempts"] == 2)
    bad = stats.bad[:10]
    check("load: no poll answered 404 or a 5xx other than 503 + Retry-After%s"
          % ("" if not bad else ": " + "; ".join(bad)), not stats.bad)

    # Exactly once: one "running -> succeeded" per job, all logs together;
    # a second attempt only for the jobs running on the killed replica.
    trans = fleet.transitions()
    wins = {}
    for i, e in trans:
        if e.get("from") == "running" and e.get("to") == "succeeded":
            wins.setdefault(e["job_id"], []).append(i)
    ids = set(jid for v in stats.ids.values() for jid in v) | ({victim} if victim else set())
    twice = {jid: w for jid, w in wins.items() if jid in ids and len(w) != 1}
    missing = [jid for jid in ids if jid not in wins]
    check("load: each job succeeded once in the replicas' logs together (%d twice, %d missing)"
          % (len(twice), len(missing)), not twice and not missing)
    was_running = set()
    if killed_at is not None:
        for i, e in fleet.transitions(killed_at):
            if i != where:
                continue
            if e.get("to") == "running":
                was_running.add(e["job_id"])
            elif e.get("from") == "running":
                was_running.discard(e["job_id"])
    wrong = [j["id"] for j in stats.ends.values()
             if j["attempts"] != (2 if j["id"] in was_running else 1)]
    check("load: a second attempt for the %d jobs running on the killed replica only "
          "(%d others)" % (len(was_running), len(wrong)), not wrong)
    per = {}
    for i, e in trans:
        if e.get("to") == "running":
            per[i] = per.get(i, 0) + 1
    say("load: jobs started per replica: %s" % dict(sorted(per.items())))
    if fleet.n > 1:
        check("load: every replica ran jobs", len(per) == fleet.n)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--topicd", default=os.path.join(ROOT, "build", "topicd"))
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    ap.add_argument("--replicas", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1, help="per replica")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--jobs", type=int, default=50, help="per client")
    ap.add_argument("--inflight", type=int, default=4, help="jobs each client keeps open")
    ap.add_argument("--max-iter", type=int, default=250, help="of each small NMF")
    ap.add_argument("--load-timeout", type=float, default=240)
    ap.add_argument("--keep", action="store_true", help="keep the logs and folders")
    args = ap.parse_args()
    args.store = os.environ.get("TOPICD_TEST_PG", "")
    if not args.store:
        say("skipped: %s" % os.environ.get("TOPICD_TEST_PG_SKIP", "no TOPICD_TEST_PG"))
        print("0 passed, 0 failed, 1 skipped")
        return 0
    work = tempfile.mkdtemp(prefix="topicd-replicas.")
    # nginx's workers (nobody, when it starts as root) write temporary files
    # under its prefix, in here.
    os.chmod(work, 0o755)
    fleet = Fleet(args, work)
    try:
        for i in range(fleet.n):
            fleet.start_replica(i)
            why = fleet.wait_ready(i)
            if not check("replica %d ready on 127.0.0.1:%d (%s)"
                         % (i, fleet.ports[i], why or "ready"), why is None):
                return 1
        if not check("nginx on 127.0.0.1:%d in front of %d replicas"
                     % (fleet.nginx_port, fleet.n), fleet.start_nginx()):
            return 1
        stats = Stats()
        test_cancel(fleet, stats)
        test_fairness(fleet, stats, args.max_iter)
        test_load(fleet, stats, args)
    finally:
        fleet.stop()
        if FAIL or args.keep:
            say("logs kept in %s" % work)
            for i in range(fleet.n):
                if not os.path.exists(fleet.logs[i]):
                    continue
                with open(fleet.logs[i], errors="replace") as f:
                    tail = [l for l in f.read().splitlines() if '"level":"info"' not in l][-5:]
                for line in tail:
                    say("replica %d: %s" % (i, line[:300]))
        else:
            shutil.rmtree(work, ignore_errors=True)
        say("done in %.0f s" % (time.monotonic() - T0))
        print("%d passed, %d failed" % (PASS, FAIL))
    return 1 if FAIL else 0


if __name__ == "__main__":
    sys.exit(main())
