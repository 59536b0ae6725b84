#!/usr/bin/env python3
"""Replication visibility latency on loopback: three regions (meridian up),
one global table; each write is made in one region (rotating) and the time
until a GetItem in each other region sees it is recorded (polling as fast as
boto3 allows, ~1 ms per call, so figures include that polling cost).

usage: bench/replication_latency.py [--bin build/meridian] [--writes 300]
"""
import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import boto3
from botocore.config import Config

REGIONS = ["us-east-1", "eu-west-1", "ap-south-1"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "build", "meridian"))
    ap.add_argument("--writes", type=int, default=300)
    ap.add_argument("--base-port", type=int, default=18700)
    args = ap.parse_args()
    d = tempfile.mkdtemp(prefix="meridian-bench-")
    up = subprocess.Popen([args.bin, "up", "--dir", d, "--base-port", str(args.base_port),
                           "--regions", ",".join(REGIONS)], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True)
    out = ""
    deadline = time.time() + 30
    while "AWS_SECRET_ACCESS_KEY" not in out and time.time() < deadline:
        out += up.stdout.readline()
    ak = re.search(r"AWS_ACCESS_KEY_ID=(\S+)", out).group(1)
    sk = re.search(r"AWS_SECRET_ACCESS_KEY=(\S+)", out).group(1)
    cfg = Config(retries={"total_max_attempts": 1})
    cl = {r: boto3.client("dynamodb", endpoint_url="http://127.0.0.1:%d" % (args.base_port + i),
                          region_name=r, aws_access_key_id=ak, aws_secret_access_key=sk, config=cfg)
          for i, r in enumerate(REGIONS)}
    try:
        a = cl[REGIONS[0]]
        a.create_table(TableName="bench", BillingMode="PAY_PER_REQUEST",
                       AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                       KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        for r in REGIONS[1:]:
            a.update_table(TableName="bench", ReplicaUpdates=[{"Create": {"RegionName": r}}])
            while True:
                reps = cl[r].describe_table(TableName="bench")["Table"].get("Replicas", []) \
                    if "bench" in cl[r].list_tables()["TableNames"] else []
                if reps and all(x["ReplicaStatus"] == "ACTIVE" for x in reps):
                    break
                time.sleep(0.05)
        lat = []
        for i in range(args.writes):
            src = REGIONS[i % 3]
            key = {"pk": {"S": "k%d" % i}}
            t0 = time.perf_counter()
            cl[src].put_item(TableName="bench", Item={"pk": {"S": "k%d" % i}, "v": {"N": str(i)}})
            t1 = time.perf_counter()
            for dst in REGIONS:
                if dst == src:
                    continue
                while "Item" not in cl[dst].get_item(TableName="bench", Key=key):
                    pass
                lat.append(time.perf_counter() - t1)
        lat.sort()
        p50 = statistics.median(lat) * 1000
        p99 = lat[int(len(lat) * 0.99) - 1] * 1000
        print("replication visibility over %d writes x 2 destinations: p50 %.2f ms, p99 %.2f ms, max %.2f ms"
              % (args.writes, p50, p99, lat[-1] * 1000))
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(timeout=30)
        except subprocess.TimeoutExpired:
            up.kill()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
