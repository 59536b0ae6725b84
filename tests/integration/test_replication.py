"""Global tables (version 2019.11.21): replication between three regions.

Each test class runs its own three-region harness.Cluster (us-east-1,
eu-west-1, ap-south-1, wired to each other as peers) and reuses it across its
tests with distinct table names.

- Adding a replica back-fills the items a table already holds (every
  attribute type, ~50 KB items, no deleted or overwritten history); the new
  replica reports ACTIVE only once back-filled; DescribeTable in every replica
  region shows GlobalTableVersion and every replica; adding a region that is
  not a configured peer, or a replica that exists, is a ValidationException;
  writes made while a replica is being added reach it.
- Writes (PutItem, UpdateItem with ADD and list_append, DeleteItem,
  BatchWriteItem) made in any region reach every region; a region reads its
  own writes at once.
- Concurrent writes of the same keys from all three regions converge to
  identical contents, whole items (last writer wins per item).
- A region killed with kill -9 during writes catches up after its restart;
  writes acknowledged anywhere (also while it was down) are everywhere.
- Removing a replica drops the table in that region only; the others keep
  replicating.
- Table settings (billing mode, provisioned throughput) changed in one region
  show up in the others.
- /metrics: replication link state, pending entries, latency histogram,
  conflicts.
- Clock skew (one cluster with a region 30 s behind, one with a region 30 s
  ahead): a write or delete made after seeing another region's write wins
  everywhere (hybrid logical clocks, not wall clocks, order causally related
  writes).
"""

import random
import threading

import harness
from harness import (ClientError, Cluster, canonical_item, create_table, err_code, item_json,
                     requires_meridian, table_contents, wait_until)

NAMES = harness.REGIONS3
US, EU, AP = NAMES
NOT_A_PEER = "sa-east-1"
GTV = harness.GLOBAL_TABLE_VERSION


def S(v):
    return {"S": v}


def N(v):
    return {"N": str(v)}


def SS(*v):
    return {"SS": list(v)}


def L(*v):
    return {"L": list(v)}


def key(pk, sk=None):
    k = {"pk": S(pk)}
    if sk is not None:
        k["sk"] = N(sk)
    return k


def get(c, table, pk):
    return c.get_item(TableName=table, Key=key(pk), ConsistentRead=True).get("Item")


def canon(item):
    return canonical_item(item) if item is not None else None


def canonical_list(items):
    return sorted((canonical_item(i) for i in items), key=item_json)


def batch_write(c, table, requests):
    for i in range(0, len(requests), 25):
        pending = {table: requests[i:i + 25]}
        for _ in range(100):
            pending = c.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not pending:
                break
        else:
            raise AssertionError("BatchWriteItem kept returning UnprocessedItems")


def rich_item(i):
    """An item with every attribute type; items 0, 75, 150, 225 carry a 50 KB
    binary and items 1, 76, 151, 226 a 50 KB string."""
    rng = random.Random(i)
    item = {
        "pk": S("p%02d" % (i % 40)),
        "sk": N(i),
        "s": S("item %d \u00e9\u4e16\U0001F600 \"quoted\" \\ slash\n" % i),
        "empty_s": S(""),
        "n": N(i * 37 - 5000),
        "f": N("%d.25" % i),
        "b": {"B": bytes([i % 256, 0, 255]) + b"bin"},
        "empty_b": {"B": b""},
        "t": {"BOOL": i % 2 == 0},
        "nul": {"NULL": True},
        "ss": SS("a%d" % i, "b", "c"),
        "ns": {"NS": ["1", "2.5", str(i + 3)]},
        "bs": {"BS": [b"\x00\x01", bytes([i % 256]) + b"x"]},
        "l": L(S("x"), N(i), {"BOOL": False}, {"NULL": True}, L(), {"M": {}}),
        "m": {"M": {"inner": S("v%d" % i), "num": N(i % 7),
                    "deep": {"M": {"list": L({"M": {"k": SS("z%d" % i)}})}}}},
    }
    if i % 75 == 0:
        item["blob"] = {"B": rng.randbytes(50000)}
    if i % 75 == 1:
        item["text"] = S("".join(rng.choice("abcdefghij\u00e9") for _ in range(50000)))
    return item


def typed_item(pk, region, j):
    return {
        "pk": S(pk), "by": S(region), "j": N(j), "neg": N("-%d.5" % (j + 1)),
        "bin": {"B": region.encode() + bytes([j])}, "flag": {"BOOL": j % 2 == 1}, "none": {"NULL": True},
        "ss": SS(region, "x%d" % j), "ns": {"NS": [str(j), str(j + 10)]}, "bs": {"BS": [b"\x01", bytes([j + 2])]},
        "l": L(S(region), N(j), L(S("nested"))), "m": {"M": {"r": S(region), "m": {"M": {"j": N(j)}}}},
    }


def table_missing(c, table):
    """True if DescribeTable says ResourceNotFoundException (anything else raises)."""
    try:
        c.describe_table(TableName=table)
    except ClientError as ex:
        if err_code(ex) == "ResourceNotFoundException":
            return True
        raise
    return False


def metric(cluster, region, name, **labels):
    samples, _ = cluster.metrics(region)
    return harness.metric_value(samples, name, **labels)


def link_up(cluster, region, peer):
    samples, _ = cluster.metrics(region)
    found = harness.metric_samples(samples, "meridian_replication_link_up", peer=peer)
    if not found:
        raise AssertionError("no meridian_replication_link_up{peer=%r} in %s" % (peer, region))
    return found[0][2]


@requires_meridian("global tables need meridian processes")
class GlobalTableTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(NAMES, tag="repl")

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def setUp(self):
        self.c = {r: self.cluster.client(r) for r in NAMES}

    def describe(self, region, table):
        return self.c[region].describe_table(TableName=table)["Table"]

    # -- adding replicas ------------------------------------------------------
    def wait_new_replica_active(self, new, table):
        """Polls DescribeTable in the new region until it reports itself
        ACTIVE; every status seen on the way is CREATING (or no table yet)."""
        seen = []

        def active():
            try:
                st = self.cluster.replica_statuses(new, table)[0].get(new)
            except ClientError as ex:
                if err_code(ex) != "ResourceNotFoundException":
                    raise
                st = "(no table yet)"
            if not seen or seen[-1] != st:
                seen.append(st)
            return st == "ACTIVE"

        wait_until(active, timeout=60, what=lambda: "replica %s of %s to become ACTIVE (seen: %s)"
                   % (new, table, seen))
        self.assertTrue(set(seen) <= {"(no table yet)", "CREATING", "ACTIVE"}, seen)
        self.assertNotIn("(no table yet)", seen[seen.index("CREATING"):] if "CREATING" in seen else [],
                         "table vanished while CREATING: %s" % seen)

    def test_add_replica_backfills_existing_items(self):
        T = "backfill"
        cl, c = self.cluster, self.c
        create_table(c[US], T, ("pk", "S"), ("sk", "N"))
        items = [rich_item(i) for i in range(300)]
        batch_write(c[US], T, [{"PutRequest": {"Item": it}} for it in items])
        # History the replicas must not see: deleted items, overwritten values.
        doomed = [{"pk": S("doomed"), "sk": N(i), "v": S("x")} for i in range(20)]
        batch_write(c[US], T, [{"PutRequest": {"Item": it}} for it in doomed])
        batch_write(c[US], T, [{"DeleteRequest": {"Key": key("doomed", i)}} for i in range(20)])
        for i in range(0, 300, 30):
            items[i] = dict(items[i], s=S("overwritten %d" % i), extra=N(i))
            c[US].put_item(TableName=T, Item=items[i])
        expected = canonical_list(items)
        self.assertEqual(len(expected), 300)
        self.assertTrue(table_contents(c[US], T) == expected, "source table does not hold what was written")
        source = self.describe(US, T)

        # eu-west-1 is added from the source region, ap-south-1 from the new replica eu-west-1.
        added = [US]
        for new, via in [(EU, US), (AP, EU)]:
            c[via].update_table(TableName=T, ReplicaUpdates=[{"Create": {"RegionName": new}}])
            added.append(new)
            statuses, version = cl.replica_statuses(via, T)
            self.assertEqual(version, GTV)
            self.assertEqual(set(statuses), set(added), "Replicas in %s right after adding %s" % (via, new))
            self.assertIn(statuses[new], ("CREATING", "ACTIVE"))
            self.assertEqual(statuses[via], "ACTIVE")
            self.wait_new_replica_active(new, T)
            # ACTIVE means back-filled: everything is there at once.
            got = table_contents(c[new], T)
            self.assertEqual(len(got), len(expected), "%s is ACTIVE with %d of %d items" % (new, len(got), len(expected)))
            self.assertTrue(got == expected, "%s is ACTIVE with other items than the source" % new)
            cl.wait_replicas(T, added)

        for r in NAMES:
            d = self.describe(r, T)
            self.assertEqual(d["GlobalTableVersion"], GTV, r)
            self.assertEqual(sorted(x["RegionName"] for x in d["Replicas"]), sorted(NAMES), r)
            self.assertEqual({x["ReplicaStatus"] for x in d["Replicas"]}, {"ACTIVE"}, r)
            self.assertEqual(d["TableName"], T)
            self.assertEqual(d["TableStatus"], "ACTIVE", r)
            self.assertEqual(d["KeySchema"], source["KeySchema"], r)
            self.assertEqual(sorted(d["AttributeDefinitions"], key=lambda a: a["AttributeName"]),
                             sorted(source["AttributeDefinitions"], key=lambda a: a["AttributeName"]), r)
            self.assertEqual(d["BillingModeSummary"]["BillingMode"], "PAY_PER_REQUEST", r)
            self.assertIn(":%s:" % r, d["TableArn"])
            self.assertTrue(table_contents(c[r], T) == expected, "contents of %s" % r)
            self.assertEqual(c[r].get_item(TableName=T, Key=key("p00", 0))["Item"]["blob"],
                             items[0]["blob"], r)

        # Replicas belong to the same account: another account does not see them.
        for r in (EU, AP):
            other = harness.client(cl[r], access_key=harness.KEY2[0], secret=harness.KEY2[1])
            self.assertNotIn(T, other.list_tables()["TableNames"], r)
            same = harness.client(cl[r], access_key=harness.KEY3[0], secret=harness.KEY3[1])
            self.assertIn(T, same.list_tables()["TableNames"], r)

        # After the back-fill, new writes flow from the newest replica.
        item = dict(rich_item(1000), pk=S("after"), sk=N(1))
        c[AP].put_item(TableName=T, Item=item)
        for r in (US, EU):
            cl.wait_item(r, T, key("after", 1), item)

    def test_add_replica_validation(self):
        T = "replica-errors"
        cl, c = self.cluster, self.c
        create_table(c[US], T)
        c[US].put_item(TableName=T, Item={"pk": S("a"), "v": N(1)})

        def add(via, region):
            return lambda: c[via].update_table(TableName=T, ReplicaUpdates=[{"Create": {"RegionName": region}}])

        # A region that is not a configured peer.
        self.assertValidation(add(US, NOT_A_PEER))
        d = self.describe(US, T)
        self.assertNotIn(NOT_A_PEER, [x["RegionName"] for x in d.get("Replicas", [])])
        self.assertTrue(table_missing(c[EU], T))

        add(US, EU)()
        cl.wait_replicas(T, [US, EU])
        # Existing replicas, asked from either region.
        self.assertValidation(add(US, EU))
        self.assertValidation(add(EU, EU))
        self.assertValidation(add(EU, US))
        self.assertValidation(add(US, US))
        self.assertValidation(add(EU, NOT_A_PEER))
        # Nothing changed.
        for r in (US, EU):
            self.assertEqual(cl.replica_statuses(r, T), ({US: "ACTIVE", EU: "ACTIVE"}, GTV), r)
            d = self.describe(r, T)
            self.assertEqual(len(d["Replicas"]), 2, d["Replicas"])
        self.assertTrue(table_missing(c[AP], T))
        self.assertEqual(table_contents(c[EU], T), [canonical_item({"pk": S("a"), "v": N(1)})])

    def test_writes_during_replica_creation_reach_it(self):
        T = "backfill-live"
        cl, c = self.cluster, self.c
        create_table(c[US], T)
        expected = {}
        batch_write(c[US], T, [{"PutRequest": {"Item": {"pk": S("old-%03d" % i), "v": N(i)}}} for i in range(200)])
        for i in range(200):
            expected["old-%03d" % i] = {"pk": S("old-%03d" % i), "v": N(i)}
        stop = threading.Event()
        state = {"n": 0, "errors": []}
        writer_client = cl.client(US)

        def writer():
            # One thread, sequential: the final contents are exactly `expected`.
            rng = random.Random(7)
            seq = 0
            while not stop.is_set() and seq < 20000:
                seq += 1
                try:
                    op = seq % 4
                    if op == 0:
                        k = "old-%03d" % rng.randrange(200)
                        writer_client.delete_item(TableName=T, Key=key(k))
                        expected.pop(k, None)
                    elif op == 1:
                        k = "old-%03d" % rng.randrange(200)
                        item = {"pk": S(k), "v": N(seq), "rewritten": {"BOOL": True}}
                        writer_client.put_item(TableName=T, Item=item)
                        expected[k] = item
                    else:
                        item = {"pk": S("new-%05d" % seq), "v": N(seq)}
                        writer_client.put_item(TableName=T, Item=item)
                        expected[item["pk"]["S"]] = item
                except Exception as ex:  # noqa: BLE001 - reported below
                    state["errors"].append(repr(ex))
                    return
                state["n"] = seq

        t = threading.Thread(target=writer, daemon=True)
        t.start()
        try:
            wait_until(lambda: state["n"] >= 20 or state["errors"], what="writes before the replica is added")
            c[US].update_table(TableName=T, ReplicaUpdates=[{"Create": {"RegionName": EU}}])
            self.wait_new_replica_active(EU, T)
            n = state["n"]
            wait_until(lambda: state["n"] >= n + 40 or state["errors"], what="writes after the replica is ACTIVE")
        finally:
            stop.set()
            t.join(30)
        self.assertFalse(t.is_alive())
        self.assertEqual(state["errors"], [])
        contents = cl.wait_converged(T, regions=[US, EU])
        self.assertTrue(contents == canonical_list(expected.values()),
                        "converged contents differ from what was written:\n" +
                        harness.describe_contents_difference({"written": canonical_list(expected.values()),
                                                              "replicas": contents}))

    # -- writes -------------------------------------------------------------
    def test_writes_in_every_region_reach_all(self):
        T = "writes"
        cl, c = self.cluster, self.c
        cl.create_global_table(T, origin=EU)
        expected = {}
        deleted = []

        def put(r, item):
            c[r].put_item(TableName=T, Item=item)
            expected[item["pk"]["S"]] = item
            # Reading its own write is immediate.
            self.assertEqual(canon(get(c[r], T, item["pk"]["S"])), canonical_item(item), r)

        for r in NAMES:
            for j in range(5):
                put(r, typed_item("put-%s-%d" % (r, j), r, j))
            batch = [{"pk": S("batch-%s-%02d" % (r, j)), "v": N(j), "by": S(r)} for j in range(30)]
            batch_write(c[r], T, [{"PutRequest": {"Item": it}} for it in batch])
            for it in batch:
                expected[it["pk"]["S"]] = it
            # Upserts with ADD (number and set) and list_append.
            resp = c[r].update_item(
                TableName=T, Key=key("add-%s" % r),
                UpdateExpression="ADD cnt :three, tags :t SET lst = list_append(if_not_exists(lst, :empty), :x)",
                ExpressionAttributeValues={":three": N(3), ":t": SS(r), ":empty": L(), ":x": L(S(r))},
                ReturnValues="ALL_NEW")
            want = {"pk": S("add-%s" % r), "cnt": N(3), "tags": SS(r), "lst": L(S(r))}
            self.assertEqual(canonical_item(resp["Attributes"]), canonical_item(want))
            expected["add-%s" % r] = want

        # A chain of updates of one item, each region building on the result
        # of the previous one once it has arrived there.
        current = {"pk": S("chain"), "cnt": N(1), "lst": L(S("start")), "tags": SS("start")}
        c[US].put_item(TableName=T, Item=current)
        cnt, lst, tags = 1, ["start"], {"start"}
        for step, r in enumerate([EU, AP, US, EU, AP]):
            cl.wait_item(r, T, key("chain"), current)
            delta = step + 2
            label = "%s-%d" % (r, step)
            append = "list_append(lst, :x)" if step % 2 == 0 else "list_append(:x, lst)"
            resp = c[r].update_item(
                TableName=T, Key=key("chain"), UpdateExpression="ADD cnt :d, tags :t SET lst = " + append,
                ExpressionAttributeValues={":d": N(delta), ":t": SS(r), ":x": L(S(label))},
                ReturnValues="ALL_NEW")
            cnt += delta
            lst = lst + [label] if step % 2 == 0 else [label] + lst
            tags |= {r}
            current = {"pk": S("chain"), "cnt": N(cnt), "lst": L(*[S(x) for x in lst]), "tags": SS(*sorted(tags))}
            self.assertEqual(canonical_item(resp["Attributes"]), canonical_item(current), "step %d in %s" % (step, r))
        expected["chain"] = current

        # Deletes: each region deletes items another region wrote (once they arrived).
        for i, r in enumerate(NAMES):
            other = NAMES[(i + 1) % 3]
            pk = "put-%s-0" % other
            cl.wait_item(r, T, key(pk), expected[pk])
            c[r].delete_item(TableName=T, Key=key(pk))
            self.assertIsNone(get(c[r], T, pk), "own delete not visible at once in %s" % r)
            deleted.append(pk)
            del expected[pk]
            gone = ["batch-%s-%02d" % (other, j) for j in range(5)]
            for pk in gone:
                cl.wait_item(r, T, key(pk), expected[pk])
            batch_write(c[r], T, [{"DeleteRequest": {"Key": key(pk)}} for pk in gone])
            for pk in gone:
                deleted.append(pk)
                del expected[pk]
        # Delete, then re-create the key from a third region: the later put wins.
        first = {"pk": S("phoenix"), "v": S("first")}
        c[US].put_item(TableName=T, Item=first)
        cl.wait_item(AP, T, key("phoenix"), first)
        c[AP].delete_item(TableName=T, Key=key("phoenix"))
        cl.wait_item(EU, T, key("phoenix"), None)
        again = {"pk": S("phoenix"), "v": S("again")}
        c[EU].put_item(TableName=T, Item=again)
        expected["phoenix"] = again

        contents = cl.wait_converged(T)
        want = canonical_list(expected.values())
        self.assertTrue(contents == want, "converged contents differ from what was written:\n" +
                        harness.describe_contents_difference({"written": want, "replicas": contents}))
        for r in NAMES:
            for pk in deleted:
                self.assertIsNone(get(c[r], T, pk), "%s still in %s" % (pk, r))

    def test_concurrent_writes_of_the_same_keys_converge(self):
        T = "concurrent"
        cl = self.cluster
        cl.create_global_table(T)
        keys = ["k%02d" % i for i in range(50)]
        written = {k: set() for k in keys}
        lock = threading.Lock()
        errors = []
        threads_per_region, ops = 3, 60
        barrier = threading.Barrier(threads_per_region * len(NAMES), timeout=30)

        def worker(region, tid):
            c = cl.client(region, read_timeout=15)
            rng = random.Random("%s-%d" % (region, tid))
            try:
                barrier.wait()
                for seq in range(ops):
                    k = rng.choice(keys)
                    v = "%s/%d/%d" % (region, tid, seq)
                    x = rng.random()
                    if x < 0.9:
                        with lock:
                            written[k].add(v)
                    if x < 0.6:
                        c.put_item(TableName=T, Item={"pk": S(k), "v": S(v), "by": S(region)})
                    elif x < 0.9:
                        c.update_item(TableName=T, Key=key(k), UpdateExpression="SET v = :v, #by = :r ADD cnt :one",
                                      ExpressionAttributeNames={"#by": "by"},
                                      ExpressionAttributeValues={":v": S(v), ":r": S(region), ":one": N(1)})
                    else:
                        c.delete_item(TableName=T, Key=key(k))
            except Exception as ex:  # noqa: BLE001 - reported below
                errors.append("%s/%d: %r" % (region, tid, ex))

        threads = harness.run_threads([lambda r=r, t=t: worker(r, t)
                                       for r in NAMES for t in range(threads_per_region)])
        for t in threads:
            t.join(120)
            self.assertFalse(t.is_alive(), "writer thread did not finish")
        self.assertEqual(errors, [])
        contents = cl.wait_converged(T)
        self.assertTrue(contents, "every key ended deleted (practically impossible)")
        for item in contents:
            k = item["pk"]["S"]
            self.assertIn(k, written)
            self.assertLessEqual(set(item), {"pk", "v", "by", "cnt"}, item)
            # The value is one that was written, and the item is one whole write.
            self.assertIn(item["v"]["S"], written[k], item)
            self.assertEqual(item["by"]["S"], item["v"]["S"].split("/")[0], item)

    # -- replica removal, settings ----------------------------------------------
    def test_remove_replica(self):
        T = "remove"
        cl, c = self.cluster, self.c
        cl.create_global_table(T)
        expected = {}
        for i in range(10):
            item = {"pk": S("before-%d" % i), "v": N(i)}
            c[EU].put_item(TableName=T, Item=item)
            expected[item["pk"]["S"]] = item
        cl.wait_converged(T)

        c[EU].update_table(TableName=T, ReplicaUpdates=[{"Delete": {"RegionName": AP}}])
        wait_until(lambda: table_missing(c[AP], T), what="%s to disappear from %s" % (T, AP))
        for r in (US, EU):
            wait_until(lambda: cl.replica_statuses(r, T) == ({US: "ACTIVE", EU: "ACTIVE"}, GTV),
                       what="%s to list only %s and %s" % (r, US, EU))
        for op in (lambda: c[AP].get_item(TableName=T, Key=key("before-0")),
                   lambda: c[AP].put_item(TableName=T, Item={"pk": S("x")})):
            self.assertClientError(op, "ResourceNotFoundException")
        self.assertNotIn(T, c[AP].list_tables()["TableNames"])

        # The remaining two keep replicating each other's writes.
        for r, other in ((US, EU), (EU, US)):
            item = {"pk": S("after-%s" % r), "v": S(r)}
            c[r].put_item(TableName=T, Item=item)
            expected[item["pk"]["S"]] = item
            cl.wait_item(other, T, key(item["pk"]["S"]), item)
        c[US].update_item(TableName=T, Key=key("before-1"), UpdateExpression="ADD v :n",
                          ExpressionAttributeValues={":n": N(100)})
        expected["before-1"] = {"pk": S("before-1"), "v": N(101)}
        c[EU].delete_item(TableName=T, Key=key("before-2"))
        del expected["before-2"]
        contents = cl.wait_converged(T, regions=[US, EU])
        self.assertEqual(contents, canonical_list(expected.values()))
        # Those writes did not bring the table back in the removed region.
        self.assertTrue(table_missing(c[AP], T))

    def test_settings_changes_replicate(self):
        T = "settings"
        cl, c = self.cluster, self.c
        cl.create_global_table(T)

        def billing(r):
            d = self.describe(r, T)
            pt = d.get("ProvisionedThroughput", {})
            return (d["BillingModeSummary"]["BillingMode"], pt.get("ReadCapacityUnits"), pt.get("WriteCapacityUnits"))

        steps = [
            (EU, {"BillingMode": "PROVISIONED",
                  "ProvisionedThroughput": {"ReadCapacityUnits": 7, "WriteCapacityUnits": 9}}, ("PROVISIONED", 7, 9)),
            (AP, {"ProvisionedThroughput": {"ReadCapacityUnits": 11, "WriteCapacityUnits": 13}}, ("PROVISIONED", 11, 13)),
            (US, {"BillingMode": "PAY_PER_REQUEST"}, ("PAY_PER_REQUEST",)),
        ]
        for via, update, want in steps:
            c[via].update_table(TableName=T, **update)
            self.assertEqual(billing(via)[:len(want)], want, "own change not visible in %s" % via)
            for r in NAMES:
                wait_until(lambda: billing(r)[:len(want)] == want,
                           what=lambda: "%s in %s to show %s (shows %s)" % (T, r, want, billing(r)))
        for r in NAMES:
            self.assertEqual(cl.replica_statuses(r, T), ({n: "ACTIVE" for n in NAMES}, GTV))
        item = {"pk": S("after-settings"), "v": S(AP)}
        c[AP].put_item(TableName=T, Item=item)
        for r in (US, EU):
            cl.wait_item(r, T, key("after-settings"), item)

    # -- metrics ----------------------------------------------------------------
    def test_metrics(self):
        T = "metrics"
        cl, c = self.cluster, self.c
        cl.create_global_table(T)
        for r in NAMES:
            for i in range(10):
                c[r].put_item(TableName=T, Item={"pk": S("m-%s-%d" % (r, i)), "v": N(i)})
        self.assertEqual(len(cl.wait_converged(T)), 30)
        for r in NAMES:
            for peer in NAMES:
                if peer == r:
                    continue
                wait_until(lambda: link_up(cl, r, peer) == 1, what="link_up{peer=%s} 1 in %s" % (peer, r))
                wait_until(lambda: metric(cl, r, "meridian_replication_pending_entries", peer=peer) == 0,
                           what="pending_entries{peer=%s} 0 in %s after convergence" % (peer, r))

        # Every (source, destination) pair replicated writes: the latency
        # histogram has observations for each (whichever side records them).
        def latency_count(src, dst):
            return sum(metric(cl, r, "meridian_replication_latency_seconds_count", source=src, destination=dst)
                       for r in NAMES)

        for src in NAMES:
            for dst in NAMES:
                if src != dst:
                    wait_until(lambda: latency_count(src, dst) > 0,
                               what="replication latency observations %s -> %s" % (src, dst))

        for r in NAMES:
            samples, types = cl.metrics(r)
            self.assertEqual(types.get("meridian_replication_conflicts_total"), "counter", r)
            self.assertEqual(types.get("meridian_replication_latency_seconds"), "histogram", r)
            self.assertEqual(types.get("meridian_replication_pending_entries"), "gauge", r)
            self.assertEqual(types.get("meridian_replication_link_up"), "gauge", r)
            peers = {l.get("peer") for _, l, _ in harness.metric_samples(samples, "meridian_replication_link_up")}
            self.assertEqual(peers, set(NAMES) - {r}, r)
            for _, l, v in harness.metric_samples(samples, "meridian_replication_link_up"):
                self.assertIn(v, (0.0, 1.0))
            peers = {l.get("peer") for _, l, _ in
                     harness.metric_samples(samples, "meridian_replication_pending_entries")}
            self.assertEqual(peers, set(NAMES) - {r}, r)
            for _, l, v in harness.metric_samples(samples, "meridian_replication_conflicts_total"):
                self.assertIn("table", l)
                self.assertGreaterEqual(v, 0)
                self.assertEqual(v, int(v))
            # Distinct keys per region: no conflicts on this table.
            self.assertEqual(harness.metric_value(samples, "meridian_replication_conflicts_total", table=T), 0, r)
            # Histogram structure per (source, destination).
            series = {}
            for name, l, v in harness.metric_samples(samples, "meridian_replication_latency_seconds_bucket"):
                series.setdefault((l.get("source"), l.get("destination")), []).append((float(l["le"]), v))
            for (src, dst), buckets in series.items():
                self.assertIsNotNone(src)
                self.assertIsNotNone(dst)
                buckets.sort()
                counts = [v for _, v in buckets]
                self.assertEqual(counts, sorted(counts), "buckets not cumulative for %s -> %s" % (src, dst))
                self.assertEqual(buckets[-1][0], float("inf"))
                count = harness.metric_value(samples, "meridian_replication_latency_seconds_count",
                                             source=src, destination=dst)
                self.assertEqual(buckets[-1][1], count)
                total = harness.metric_value(samples, "meridian_replication_latency_seconds_sum",
                                             source=src, destination=dst)
                self.assertGreaterEqual(total, 0)


class CrashWriter(threading.Thread):
    """Puts unique keys (and overwrites a few shared ones) in one region until
    stopped; remembers acknowledged unique-key writes and whether the victim
    was down when they were acknowledged."""

    def __init__(self, cluster, region, table, tid, down):
        super().__init__(daemon=True)
        self.client = cluster.client(region, read_timeout=10, connect_timeout=2)
        self.region, self.table, self.tid, self.down = region, table, tid, down
        self.stop = threading.Event()
        self.acked = {}
        self.acked_while_down = 0
        self.count = 0
        self.errors = 0
        self.first_errors = []

    def run(self):
        seq = 0
        while not self.stop.is_set() and seq < 100000:
            seq += 1
            if seq % 4 == 0:
                item = {"pk": S("shared-%d" % (seq % 7)), "v": S("%s-%d-%d" % (self.region, self.tid, seq))}
            else:
                item = {"pk": S("%s-%d-%06d" % (self.region, self.tid, seq)), "v": N(seq)}
            try:
                self.client.put_item(TableName=self.table, Item=item)
            except Exception as ex:  # noqa: BLE001 - outcome unknown
                self.errors += 1
                if len(self.first_errors) < 3:
                    self.first_errors.append(repr(ex))
                self.stop.wait(0.05)
                continue
            self.count += 1
            if not item["pk"]["S"].startswith("shared-"):
                self.acked[item["pk"]["S"]] = item
                if self.down.is_set():
                    self.acked_while_down += 1


@requires_meridian("kill -9 and restarts need meridian processes")
class RegionCrashTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(NAMES, tag="repl-crash")

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def test_kill9_during_writes_then_catch_up(self):
        T = "crash"
        cl = self.cluster
        cl.create_global_table(T)
        victim, survivors = AP, (US, EU)
        down = threading.Event()
        writers = [CrashWriter(cl, r, T, tid, down) for r in NAMES for tid in range(2)]
        for w in writers:
            w.start()
        try:
            wait_until(lambda: all(w.count >= 15 for w in writers), what="every writer to make 15 writes")
            down.set()
            self.assertEqual(cl.kill9(victim), -9)
            # Keep writing in the surviving regions while the victim is down.
            wait_until(lambda: all(w.acked_while_down >= 25 for w in writers if w.region in survivors),
                       what="writes acknowledged by the survivors while %s is down" % victim)
        finally:
            for w in writers:
                w.stop.set()
            for w in writers:
                w.join(30)
        for w in writers:
            self.assertFalse(w.is_alive())
            if w.region in survivors:
                self.assertEqual(w.errors, 0, "writes failed in %s while a peer was down: %s"
                                 % (w.region, w.first_errors))
        cl.restart(victim)
        acked = {}
        for w in writers:
            acked.update(w.acked)
        contents = cl.wait_converged(T, timeout=90)
        by_key = {i["pk"]["S"]: i for i in contents}
        missing = [k for k in acked if k not in by_key]
        self.assertEqual(missing[:10], [], "%d acknowledged writes missing (of %d)" % (len(missing), len(acked)))
        wrong = [k for k, item in acked.items() if by_key[k] != canonical_item(item)]
        self.assertEqual(wrong[:10], [])
        # The restarted region replicates both ways again.
        c = {r: cl.client(r) for r in NAMES}
        item = {"pk": S("after-restart-%s" % victim), "v": S(victim)}
        c[victim].put_item(TableName=T, Item=item)
        for r in survivors:
            cl.wait_item(r, T, key(item["pk"]["S"]), item)
        item = {"pk": S("after-restart-%s" % US), "v": S(US)}
        c[US].put_item(TableName=T, Item=item)
        cl.wait_item(victim, T, key(item["pk"]["S"]), item)


class SkewedClusterTest(harness.TestCase):
    """Base of the clock-skew tests: a cluster where region SKEWED runs its
    wall clock OFFSET_MS off (--clock-offset-ms). One skewed region per
    cluster: its distance to the others (30 s) stays well inside the default
    --max-clock-skew-ms (60 s) beyond which received clocks are clamped."""

    SKEWED, OFFSET_MS, TAG = None, 0, None

    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(NAMES, tag=cls.TAG,
                              extra_args={cls.SKEWED: ["--clock-offset-ms", str(cls.OFFSET_MS)]})

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def setUp(self):
        self.c = {r: self.cluster.client(r) for r in NAMES}

    def overwrite_after_seeing(self, T, pk, first, second, current=None):
        """`first` writes pk (unless it holds `current` already); once `second`
        has it, `second` updates it based on what it read there; that causally
        later write must win in every region."""
        cl, c = self.cluster, self.c
        if current is None:
            current = {"pk": S(pk), "v": S("from-" + first), "n": N(10), "l": L(S(first))}
            c[first].put_item(TableName=T, Item=current)
        cl.wait_item(second, T, key(pk), current)
        resp = c[second].update_item(
            TableName=T, Key=key(pk), UpdateExpression="SET v = :v, l = list_append(l, :x) ADD n :one",
            ExpressionAttributeValues={":v": S("from-" + second), ":x": L(S(second)), ":one": N(1)},
            ReturnValues="ALL_NEW")
        want = {"pk": S(pk), "v": S("from-" + second), "n": N(int(current["n"]["N"]) + 1),
                "l": {"L": current["l"]["L"] + [S(second)]}}
        self.assertEqual(canonical_item(resp["Attributes"]), canonical_item(want))
        # Its own write is visible at once, whatever its wall clock says.
        self.assertEqual(canon(get(c[second], T, pk)), canonical_item(want), "read-your-writes in %s" % second)
        for r in NAMES:
            cl.wait_item(r, T, key(pk), want)
        return want

    def delete_after_seeing(self, T, pk, region, current):
        """Once `region` holds `current`, it deletes pk: gone everywhere."""
        cl, c = self.cluster, self.c
        cl.wait_item(region, T, key(pk), current)
        c[region].delete_item(TableName=T, Key=key(pk))
        self.assertIsNone(get(c[region], T, pk), "own delete not visible at once in %s" % region)
        for r in NAMES:
            cl.wait_item(r, T, key(pk), None)

    def recreate_after_seeing_delete(self, T, pk, region):
        cl, c = self.cluster, self.c
        cl.wait_item(region, T, key(pk), None)
        item = {"pk": S(pk), "v": S("reborn-in-" + region), "n": N(1), "l": L()}
        c[region].put_item(TableName=T, Item=item)
        for r in NAMES:
            cl.wait_item(r, T, key(pk), item)
        return item


@requires_meridian("clock offsets need meridian processes")
class ClockBehindTest(SkewedClusterTest):
    """eu-west-1's wall clock runs 30 s behind the other two regions'."""

    SKEWED, OFFSET_MS, TAG = EU, -30000, "skew-behind"

    def test_lagging_region_overwrites_a_write_it_has_seen(self):
        T = "skew-behind"
        self.cluster.create_global_table(T)
        self.overwrite_after_seeing(T, "x", US, EU)
        self.cluster.wait_converged(T)

    def test_lagging_region_deletes_and_recreates_after_seeing(self):
        T = "skew-behind-chain"
        self.cluster.create_global_table(T, origin=EU)
        cur = self.overwrite_after_seeing(T, "y", AP, EU)
        cur = self.overwrite_after_seeing(T, "y", EU, US, current=cur)
        cur = self.overwrite_after_seeing(T, "y", US, EU, current=cur)
        self.delete_after_seeing(T, "y", EU, cur)
        # A normal region re-creates it, and the lagging one overwrites that again.
        cur = self.recreate_after_seeing_delete(T, "y", AP)
        cur = self.overwrite_after_seeing(T, "y", AP, EU, current=cur)
        self.assertEqual(self.cluster.wait_converged(T), [canonical_item(cur)])


@requires_meridian("clock offsets need meridian processes")
class ClockAheadTest(SkewedClusterTest):
    """ap-south-1's wall clock runs 30 s ahead of the other two regions'."""

    SKEWED, OFFSET_MS, TAG = AP, 30000, "skew-ahead"

    def test_write_after_seeing_a_write_from_a_region_ahead_wins(self):
        T = "skew-ahead"
        self.cluster.create_global_table(T, origin=AP)
        self.overwrite_after_seeing(T, "x", AP, US)
        self.cluster.wait_converged(T)

    def test_delete_and_recreate_after_seeing_writes_from_a_region_ahead(self):
        T = "skew-ahead-chain"
        self.cluster.create_global_table(T)
        cur = self.overwrite_after_seeing(T, "y", AP, EU)
        cur = self.overwrite_after_seeing(T, "y", EU, AP, current=cur)
        self.delete_after_seeing(T, "y", US, cur)
        # The region ahead re-creates it; a normal region then overwrites that.
        cur = self.recreate_after_seeing_delete(T, "y", AP)
        cur = self.overwrite_after_seeing(T, "y", AP, US, current=cur)
        self.assertEqual(self.cluster.wait_converged(T), [canonical_item(cur)])
