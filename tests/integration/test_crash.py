"""Durability under crashes: 4 writer threads (each with its own boto3
client) put items for a bounded time while the server is killed with
SIGKILL; after a restart on the same data directory every acknowledged
write must be there with its value (writes that failed may or may not be).
Three kill cycles accumulate data, and each cycle re-checks everything
acknowledged so far. Each thread also overwrites a counter item: after a
crash it holds the last acknowledged value or the one in flight, never an
older one. Finally SIGTERM during the load must exit 0 and lose nothing.
"""

import threading
import time

import harness
from harness import create_table, requires_meridian

T = "crash"
THREADS = 4
LOAD_SECONDS = 5.0        # writers stop on their own after this long
KILL_AFTER_SECONDS = 2.0  # the kill comes while they are still writing
MIN_ACKS_BEFORE_KILL = 20  # low enough for sanitizer builds


class Writer(threading.Thread):
    def __init__(self, server, tid, cycle, stop):
        super().__init__(daemon=True)
        self.client = harness.client(server, read_timeout=10, connect_timeout=2)
        self.tid = tid
        self.cycle = cycle
        self.stop = stop
        self.acked = {}            # key -> value of acknowledged puts
        self.counter_log = []      # (value, acknowledged) of counter puts, in order
        self.errors = 0

    def run(self):
        deadline = time.monotonic() + LOAD_SECONDS
        seq = 0
        while not self.stop.is_set() and time.monotonic() < deadline and seq < 200000:
            seq += 1
            key = "t%d-c%d-%06d" % (self.tid, self.cycle, seq)
            value = "value-%s-%d" % (key, seq * 7919 % 100003)
            try:
                self.client.put_item(TableName=T, Item={"pk": {"S": key}, "v": {"S": value},
                                                        "n": {"N": str(seq)}})
                self.acked[key] = value
            except Exception:  # connection refused/reset, timeouts, 5xx: outcome unknown
                self.errors += 1
                if self.stop.is_set():
                    break
                time.sleep(0.01)
                continue
            if seq % 4 == 0:
                counter = self.cycle * 1000000 + seq
                try:
                    self.client.put_item(TableName=T, Item={"pk": {"S": "counter-%d" % self.tid},
                                                            "v": {"N": str(counter)}})
                    self.counter_log.append((counter, True))
                except Exception:
                    self.counter_log.append((counter, False))
                    self.errors += 1
                    if self.stop.is_set():
                        break


@requires_meridian("kill -9 and restarts need a meridian process")
class CrashTest(harness.TestCase):
    def setUp(self):
        self.server = harness.Server(name="crash").start()
        create_table(harness.client(self.server), T, ("pk", "S"))
        self.acked = {}
        # tid -> (last acknowledged counter value, values sent after it whose
        # outcome is unknown), over all cycles so far.
        self.counters = {}

    def tearDown(self):
        self.server.close()

    def run_load(self, cycle, interrupt):
        """Runs the writers; calls interrupt() while they are writing."""
        stop = threading.Event()
        writers = [Writer(self.server, tid, cycle, stop) for tid in range(THREADS)]
        for w in writers:
            w.start()
        start = time.monotonic()
        # Kill once the writers are well under way (bounded wait).
        while time.monotonic() - start < LOAD_SECONDS - 1.0:
            if (time.monotonic() - start >= KILL_AFTER_SECONDS
                    and sum(len(w.acked) for w in writers) >= MIN_ACKS_BEFORE_KILL):
                break
            time.sleep(0.05)
        alive = [w.is_alive() for w in writers]
        interrupt()
        stop.set()
        for w in writers:
            w.join(timeout=60)
            self.assertFalse(w.is_alive(), "writer thread did not stop")
        self.assertTrue(any(alive), "the writers had already finished before the interruption")
        total = sum(len(w.acked) for w in writers)
        self.assertGreaterEqual(total, MIN_ACKS_BEFORE_KILL, "too few writes acknowledged before the kill")
        for w in writers:
            self.acked.update(w.acked)
            last, pending = self.counters.get(w.tid, (None, set()))
            for value, ok in w.counter_log:
                if ok:
                    last, pending = value, set()
                else:
                    pending = pending | {value}
            self.counters[w.tid] = (last, pending)
        return total

    def verify(self):
        cl = harness.client(self.server)
        keys = sorted(self.acked)
        found = {}
        for i in range(0, len(keys), 100):
            chunk = [{"pk": {"S": k}} for k in keys[i:i + 100]]
            request = {T: {"Keys": chunk, "ConsistentRead": True}}
            for _ in range(20):
                resp = cl.batch_get_item(RequestItems=request)
                for item in resp["Responses"].get(T, []):
                    found[item["pk"]["S"]] = item["v"]["S"]
                if not resp.get("UnprocessedKeys"):
                    break
                request = resp["UnprocessedKeys"]
            else:
                self.fail("BatchGetItem kept returning UnprocessedKeys")
        missing = [k for k in keys if k not in found]
        self.assertEqual(missing[:20], [], "%d acknowledged writes lost (of %d)" % (len(missing), len(keys)))
        wrong = [k for k in keys if found[k] != self.acked[k]]
        self.assertEqual(wrong[:20], [], "acknowledged writes with wrong values")
        for tid, (last, pending) in self.counters.items():
            item = cl.get_item(TableName=T, Key={"pk": {"S": "counter-%d" % tid}}, ConsistentRead=True).get("Item")
            if last is None:
                continue
            self.assertIsNotNone(item, "counter-%d lost" % tid)
            value = int(item["v"]["N"])
            # The last acknowledged value, or a later one whose request failed
            # (it may have been applied): never an older one.
            self.assertIn(value, {last} | pending, "counter-%d went back in time" % tid)
        # The restarted server takes new writes.
        cl.put_item(TableName=T, Item={"pk": {"S": "after-restart"}, "v": {"S": "ok"}})
        self.assertEqual(cl.get_item(TableName=T, Key={"pk": {"S": "after-restart"}})["Item"]["v"], {"S": "ok"})
        return len(keys)

    def test_kill9_cycles(self):
        for cycle in range(3):
            with self.subTest(cycle=cycle):
                self.run_load(cycle, self.server.kill9)
                self.assertIsNotNone(self.server.proc.returncode)
                self.assertEqual(self.server.proc.returncode, -9)
                self.server.restart()
                self.verify()
        # All three cycles' data is there at the end.
        self.assertEqual({k.split("-")[1] for k in self.acked}, {"c0", "c1", "c2"})

    def test_sigterm_during_load(self):
        rc = []

        def term():
            rc.append(self.server.stop())  # SIGTERM; asserts exit code 0

        self.run_load(0, term)
        self.assertEqual(rc, [0])
        self.server.restart()
        self.verify()
        # And a clean stop after that is clean too.
        self.assertEqual(self.server.stop(), 0)
        self.server.restart()
        self.verify()
