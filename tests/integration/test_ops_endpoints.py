"""Operational endpoints: GET /health (JSON region/status/version, no
authentication) and GET /metrics (with the operator's bearer token;
Prometheus text: meridian_requests_total counters by operation and outcome
that count requests exactly, the meridian_request_duration_seconds
histogram, and the meridian_items_stored and meridian_bytes_stored gauges).
"""

import json
import re
import time

import harness
from harness import ClientError, create_table, requires_meridian

server = None
c = None

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def setUpModule():
    global server, c
    if harness.moto_mode:
        return
    server = harness.Server(name="ops", region="eu-west-3").start()
    c = harness.client(server)
    create_table(c, "ops", ("pk", "S"))


def tearDownModule():
    if server is not None:
        server.close()


def scrape():
    status, headers, body = harness.operator_get(server, "/metrics")
    assert status == 200, (status, body[:200])
    samples = []
    types = {}
    for line in body.decode("utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(None, 3)
            types[name] = kind
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "unparsable metrics line: %r" % line
        labels = dict(LABEL.findall(m.group(3) or ""))
        value = float(m.group(4))
        samples.append((m.group(1), labels, value))
    return headers, samples, types


def value(samples, name, **labels):
    return sum(v for n, l, v in samples if n == name and all(l.get(k) == x for k, x in labels.items()))


@requires_meridian("meridian's own /health and /metrics")
class HealthTest(harness.TestCase):
    def test_health_json(self):
        status, headers, body = harness.http_get(server.host, server.port, "/health")
        self.assertEqual(status, 200)
        self.assertTrue(headers.get("content-type", "").startswith("application/json"), headers)
        data = json.loads(body)
        self.assertEqual(data["region"], "eu-west-3")
        self.assertEqual(data["status"], "ok")
        self.assertIsInstance(data["version"], str)
        self.assertTrue(data["version"])

    def test_health_of_another_region(self):
        other = harness.Server(name="ops-2", region="ap-northeast-1").start()
        try:
            status, _, body = harness.http_get(other.host, other.port, "/health")
            self.assertEqual(status, 200)
            self.assertEqual(json.loads(body)["region"], "ap-northeast-1")
        finally:
            other.close()


@requires_meridian("meridian's own /health and /metrics")
class MetricsTest(harness.TestCase):
    def test_metric_names_and_types(self):
        headers, samples, types = scrape()
        self.assertTrue(headers.get("content-type", "").startswith("text/plain"), headers)
        self.assertEqual(types.get("meridian_requests_total"), "counter")
        self.assertEqual(types.get("meridian_request_duration_seconds"), "histogram")
        self.assertEqual(types.get("meridian_items_stored"), "gauge")
        self.assertEqual(types.get("meridian_bytes_stored"), "gauge")
        names = {n for n, _, _ in samples}
        for n in ("meridian_request_duration_seconds_bucket", "meridian_request_duration_seconds_sum",
                  "meridian_request_duration_seconds_count", "meridian_items_stored", "meridian_bytes_stored"):
            self.assertIn(n, names)

    def test_put_item_counter_counts_exactly(self):
        _, before, _ = scrape()
        for i in range(5):
            c.put_item(TableName="ops", Item={"pk": {"S": "count-%d" % i}})
        with self.assertRaises(ClientError):
            c.put_item(TableName="ops", Item={"pk": {"S": "count-0"}}, ConditionExpression="attribute_not_exists(pk)")
        _, after, _ = scrape()
        ok_before = value(before, "meridian_requests_total", operation="PutItem", outcome="success")
        ok_after = value(after, "meridian_requests_total", operation="PutItem", outcome="success")
        self.assertEqual(ok_after - ok_before, 5)
        all_before = value(before, "meridian_requests_total", operation="PutItem")
        all_after = value(after, "meridian_requests_total", operation="PutItem")
        # The conditional failure is counted under another outcome.
        self.assertEqual(all_after - all_before, 6)
        failed = [l for n, l, v in after if n == "meridian_requests_total"
                  and l.get("operation") == "PutItem" and l.get("outcome") != "success" and v > 0]
        self.assertTrue(failed, "no PutItem series with a non-success outcome")

    def test_other_operations_are_counted_separately(self):
        _, before, _ = scrape()
        for _ in range(3):
            c.get_item(TableName="ops", Key={"pk": {"S": "count-1"}})
        c.query(TableName="ops", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "x"}})
        _, after, _ = scrape()
        d = lambda op: (value(after, "meridian_requests_total", operation=op, outcome="success")
                        - value(before, "meridian_requests_total", operation=op, outcome="success"))
        self.assertEqual(d("GetItem"), 3)
        self.assertEqual(d("Query"), 1)
        self.assertEqual(d("PutItem"), 0)

    def test_histogram_is_consistent(self):
        for i in range(3):
            c.get_item(TableName="ops", Key={"pk": {"S": "hist-%d" % i}})
        _, samples, _ = scrape()
        series = {}
        for n, l, v in samples:
            if n.startswith("meridian_request_duration_seconds_"):
                key = tuple(sorted((k, x) for k, x in l.items() if k != "le"))
                series.setdefault(key, {"buckets": [], "count": None, "sum": None})
                if n.endswith("_bucket"):
                    series[key]["buckets"].append((float(l["le"]), v))
                elif n.endswith("_count"):
                    series[key]["count"] = v
                elif n.endswith("_sum"):
                    series[key]["sum"] = v
        self.assertTrue(series)
        total = 0
        for key, s in series.items():
            buckets = sorted(s["buckets"])
            self.assertTrue(buckets, key)
            self.assertEqual(buckets[-1][0], float("inf"), key)
            counts = [v for _, v in buckets]
            self.assertEqual(counts, sorted(counts), "buckets must be cumulative: %r" % (key,))
            self.assertEqual(buckets[-1][1], s["count"], key)
            self.assertGreaterEqual(s["sum"], 0)
            total += s["count"]
        self.assertGreaterEqual(total, 3)

    def test_storage_gauges(self):
        create_table(c, "ops_gauge", ("pk", "S"))
        for i in range(10):
            c.put_item(TableName="ops_gauge", Item={"pk": {"S": "g-%d" % i}, "blob": {"S": "z" * 1000}})
        # The gauges may be refreshed in the background: poll (bounded).
        items = size = 0
        for _ in range(60):
            _, samples, _ = scrape()
            items = value(samples, "meridian_items_stored")
            size = value(samples, "meridian_bytes_stored")
            if items >= 10 and size >= 10 * 1000:
                break
            time.sleep(0.25)
        self.assertGreaterEqual(items, 10)
        self.assertGreaterEqual(size, 10 * 1000)

    def test_endpoints_need_the_token_not_a_signature_but_api_does(self):
        status, _, _ = harness.operator_get(server, "/metrics")
        self.assertEqual(status, 200)
        status, _, _ = harness.http_get(server.host, server.port, "/metrics")
        self.assertEqual(status, 401)
        resp = harness.raw_request(server, "ListTables", b"{}", sign=False)
        self.assertEqual(resp.status, 400)
        self.assertEqual(harness.error_type(resp), "MissingAuthenticationTokenException")
