#!/usr/bin/env python3
"""Consistency checks of the monitoring definitions, run by ./test.

  check.py DIR DOC

DIR holds alerts.yml, alerts.test.yml, datadog-monitors.json,
datadog-openmetrics.json, contract-metrics.txt and the node_exporter sample;
DOC is docs/reference/monitoring-alerts.md. Prints PASS/FAIL per check and
exits 1 on any failure.
"""
import json
import re
import sys

import yaml

d, doc_path = sys.argv[1], sys.argv[2]
failed = 0


def check(name, ok, detail=""):
    global failed
    print(("PASS " if ok else "FAIL ") + name + ("" if ok or not detail else ": " + detail))
    if not ok:
        failed += 1


rules = [r for g in yaml.safe_load(open(f"{d}/alerts.yml"))["groups"] for r in g["rules"]]
tests = yaml.safe_load(open(f"{d}/alerts.test.yml"))["tests"]
monitors = json.load(open(f"{d}/datadog-monitors.json"))
om = yaml.safe_load(open(f"{d}/datadog-openmetrics.json"))
doc = open(doc_path).read()

# ---- metric catalogue: the contract's and node_exporter's ------------------
contract = {}  # name -> (type, labels)
for line in open(f"{d}/contract-metrics.txt"):
    line = line.split("#")[0].split()
    if line:
        contract[line[0]] = (line[1], set(line[2].split(",")) if len(line) > 2 else set())
node = {}
for line in open(f"{d}/node-exporter-1.5.sample.prom"):
    m = re.match(r"# TYPE (\S+) (\S+)", line)
    if m:
        node[m.group(1)] = (m.group(2), set())
    m = re.match(r"([a-z_]+)\{(.*)\}", line)
    if m and m.group(1) in node:
        node[m.group(1)][1].update(re.findall(r'(\w+)="', m.group(2)))
catalogue = {**contract, **node}
check("node_exporter sample has the btrfs device families and node_time_seconds",
      {"node_btrfs_device_size_bytes", "node_btrfs_device_unused_bytes", "node_btrfs_device_errors_total",
       "node_time_seconds"} <= set(node))

# ---- Prometheus rules against their tests ----------------------------------
alerts = sorted({r["alert"] for r in rules})
variants = {(r["alert"], r["labels"].get("reason")) for r in rules}
fired, quiet, annotated = set(), set(), True
for t in tests:
    for a in t.get("alert_rule_test", []):
        if a.get("exp_alerts"):
            for e in a["exp_alerts"]:
                fired.add((a["alertname"], e["exp_labels"].get("reason")))
                annotated &= bool(e.get("exp_annotations"))
        else:
            quiet.add(a["alertname"])
for name in alerts:
    check(f"{name}: a test where it fires", any(f[0] == name for f in fired))
    check(f"{name}: a test where it stays quiet", name in quiet)
missing = sorted(f"{a} (reason {r})" for a, r in variants if (a, r) not in fired)
check("every rule of an alert (each reason) fires in a test", not missing, ", ".join(missing))
check("every firing case checks the annotations", annotated)
check("every rule has severity warning or critical",
      all(r["labels"].get("severity") in ("warning", "critical") for r in rules))
check("every rule has summary, description and runbook_url",
      all({"summary", "description", "runbook_url"} <= set(r["annotations"]) for r in rules))
used = set()
for r in rules:
    used |= set(re.findall(r"\b((?:storage|node)_[a-z0-9_]+)\b", r["expr"]))
unknown = sorted(used - set(catalogue))
check(f"the rules use only contract and node_exporter metrics ({len(used)})", not unknown, ", ".join(unknown))

# ---- docs ---------------------------------------------------------------------
anchors = {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
           for h in re.findall(r"^#+ (.*)$", doc, re.M)}
bad = sorted({r["annotations"]["runbook_url"] for r in rules
              if r["annotations"]["runbook_url"].split("#")[1] not in anchors})
check("every runbook_url points at a heading of monitoring-alerts.md", not bad, ", ".join(bad))
for word in ("seed", "teammate"):
    check(f"the docs do not say '{word}'", not re.search(rf"\b{word}", doc, re.I))
check("the docs do not say 'issue N'", not re.search(r"\bissue #?\d", doc, re.I))

# ---- Datadog: what the agent sends -----------------------------------------
inst = om["instances"][0]
ns = inst["namespace"]
dd = {}  # Datadog name -> Prometheus family
for entry in inst["metrics"]:
    name, typ = (entry, "native") if isinstance(entry, str) else next(iter(entry.items()))
    typ = typ if isinstance(typ, str) else typ.get("type", "native")
    prom = name if name in catalogue else name + "_total"
    check(f"scraped metric {name} is a contract or node_exporter metric", prom in catalogue)
    if prom not in catalogue:
        continue
    # openmetrics v2: <namespace>.<name>; a native counter is sent as
    # <name without _total>.count, a gauge (or a type: gauge override) as is.
    native_counter = typ == "native" and catalogue[prom][0] == "counter"
    dd[f"{ns}.{name}.count" if native_counter else f"{ns}.{name}"] = prom

# The NixOS example in the doc must scrape the same list.
block = re.search(r"checks\.openmetrics = \{(.*?)\n```", doc, re.S)
listed = re.findall(r'"((?:storage|node)_[a-z0-9_]+)"|\{ (node_[a-z0-9_]+) = ', block.group(1)) if block else []
listed = [a or b for a, b in listed]
yaml_names = [e if isinstance(e, str) else next(iter(e)) for e in inst["metrics"]]
check("the doc's NixOS openmetrics example lists the same metrics as datadog-openmetrics.json",
      listed == yaml_names, f"{listed} != {yaml_names}")

# ---- Datadog: the monitors ----------------------------------------------------
check("datadog-monitors.json is a non-empty array", isinstance(monitors, list) and monitors)
for name in alerts:
    n = sum(m["name"].endswith(" " + name) for m in monitors)
    check(f"{name}: exactly one Datadog monitor", n == 1, f"{n} found")
queried = set()
jobs = ["snapshots", "backup", "backup-check", "restore-drill"]  # the result files' jobs
checks_expected = {"storage." + j.replace("-", "_") for j in jobs}
checks_seen = set()
for m in monitors:
    n = m["name"]
    ok = {"name", "type", "query", "message", "tags", "options"} <= set(m) and "thresholds" in m["options"]
    check(f"{n}: has name, type, query, message, tags, options.thresholds", ok)
    check(f"{n}: type is query alert or service check", m["type"] in ("query alert", "service check"))
    check(f"{n}: message notifies @STORAGE_NOTIFY", "@STORAGE_NOTIFY" in m["message"])
    rb = re.search(r"Runbook: docs/reference/monitoring-alerts\.md#([a-z0-9-]+)", m["message"])
    check(f"{n}: message links a heading of monitoring-alerts.md", bool(rb) and rb.group(1) in anchors)
    if m["type"] == "query alert":
        refs = re.findall(r"(?:min|max|avg|sum):([A-Za-z0-9_.]+)\{", m["query"])
        queried.update(refs)
        unknown = sorted(set(refs) - set(dd))
        check(f"{n}: queries only metrics the agent sends", refs and not unknown, ", ".join(unknown))
        tail = re.search(r"(<=|>=|<|>|==|!=)\s*(-?[0-9.]+)$", m["query"])
        check(f"{n}: query threshold equals options.thresholds.critical",
              bool(tail) and float(tail.group(2)) == float(m["options"]["thresholds"]["critical"]))
    else:
        q = re.match(r'"([a-z0-9_.]+)"\.over\("\*"\)\.by\("host"\)\.last\((\d+)\)\.count_by_status\(\)$', m["query"])
        check(f"{n}: service check query", bool(q))
        if q:
            checks_seen.add(q.group(1))
            check(f"{n}: last(count) >= the largest threshold",
                  int(q.group(2)) >= max(m["options"]["thresholds"].values()))
check("a service check monitor for each job storage-notify reports", checks_seen == checks_expected,
      f"{sorted(checks_seen)} != {sorted(checks_expected)}")
unused = sorted(set(dd) - queried)
check("every scraped metric is used by a monitor (a narrow list)", not unused, ", ".join(unused))
check("the doc says how to replace @STORAGE_NOTIFY", "@STORAGE_NOTIFY" in doc)

# ---- Datadog: the queries decide as the Prometheus rules do -----------------
# A small evaluator: each `agg:metric{*} by {..}` becomes the metric's value
# in a scenario; the window aggregation is left out (constant values).
# change(...) monitors get the change itself as the value.


def evaluate(query, values):
    q = re.sub(r"^(?:change\([a-z]+\(last_\w+\),\w+\)|[a-z]+\(last_\w+\)):", "", query)
    expr, op, thr = re.match(r"(.*?)\s*(<=|>=|<|>|==|!=)\s*(-?[0-9.]+)$", q).groups()
    expr = re.sub(r"(?:min|max|avg|sum):([A-Za-z0-9_.]+)\{\*\} by \{[a-z,]+\}",
                  lambda mm: repr(values[mm.group(1)]), expr)
    return eval(f"({expr}) {op} {thr}", {"__builtins__": {}, "abs": abs})  # only numbers and abs remain


Gi = 1024 ** 3
s = "storage.storage_"
now = "storage.node_time_seconds"
scenarios = {  # alert: [(values, fires)], mirroring alerts.test.yml
    "StorageSnapshotStale": [({now: 14400, s + "snapshot_last_success_timestamp_seconds": 600,
                               s + "snapshot_interval_seconds": 3600}, True),
                             ({now: 7200, s + "snapshot_last_success_timestamp_seconds": 600,
                               s + "snapshot_interval_seconds": 3600}, False)],
    "StorageSnapshotFailing": [({s + "snapshot_last_run_success": 0}, True), ({s + "snapshot_last_run_success": 1}, False)],
    "StorageRetentionViolation": [({s + "snapshot_retention_violations": 2}, True),
                                  ({s + "snapshot_retention_violations": 0}, False)],
    "StorageBackupStale": [({now: 194400, s + "backup_last_success_timestamp_seconds": 95400}, True),
                           ({now: 187200, s + "backup_last_success_timestamp_seconds": 95400}, False)],
    "StorageBackupFailed": [({s + "backup_last_run_success": 0}, True), ({s + "backup_last_run_success": 1}, False)],
    "StorageBackupCheckFailed": [({s + "backup_check_success": 0}, True), ({s + "backup_check_success": 1}, False)],
    "StorageBackupCheckStale": [({now: 111600, s + "backup_check_timestamp_seconds": -586800}, True),
                                ({now: 104400, s + "backup_check_timestamp_seconds": -586800}, False)],
    "StorageRestoreDrillFailed": [({s + "restore_drill_success": 0}, True), ({s + "restore_drill_success": 1}, False)],
    "StorageRestoreDrillStale": [({now: 115200, s + "restore_drill_timestamp_seconds": -2916000}, True),
                                 ({now: 115200, s + "restore_drill_timestamp_seconds": -86400}, False)],
    "StorageBtrfsDeviceErrors": [({"storage.node_btrfs_device_errors": 3}, True),
                                 ({"storage.node_btrfs_device_errors": 0}, False)],
    "StorageRotationMissing": [({s + "rotation_boot_ran": 0}, True), ({s + "rotation_boot_ran": 1}, False)],
    "StorageRotationFailed": [({s + "rotation_boot_exit_code": 1}, True), ({s + "rotation_boot_exit_code": 0}, False)],
    "StorageRotationBacklogGrowing": [({s + "rotation_backlog_archives": 1}, True),
                                      ({s + "rotation_backlog_archives": 0}, False)],
    "StorageCostOverBudget": [({s + "backup_estimated_monthly_cost_dollars": 12.5,
                                s + "backup_monthly_budget_dollars": 10}, True),
                              ({s + "backup_estimated_monthly_cost_dollars": 9.8,
                                s + "backup_monthly_budget_dollars": 10}, False)],
}
# Unallocated space: the Datadog query (one expression, no `and`) against
# the rule's two conditions, over a grid of device sizes and free space.
grid = []
for size in (16 * Gi, 32 * Gi, 64 * Gi, 200 * Gi, 1024 * Gi, 4096 * Gi):
    for unused in (0.5 * Gi, 2 * Gi, 3 * Gi, 8 * Gi, 9.9 * Gi, 10.1 * Gi, 20 * Gi, 0.049 * size, 0.051 * size):
        grid.append(({"storage.node_btrfs_device_unused_bytes": unused, "storage.node_btrfs_device_size_bytes": size},
                     unused < 10 * Gi and unused / size < 0.05))
scenarios["StorageBtrfsUnallocatedLow"] = grid
for name in alerts:
    m = next((m for m in monitors if m["name"].endswith(" " + name)), None)
    cases = scenarios.get(name, [])
    check(f"{name}: Datadog scenarios where it fires and where it does not",
          {f for _, f in cases} == {True, False})
    if m is None:
        continue
    try:
        wrong = [i for i, (v, f) in enumerate(cases) if evaluate(m["query"], v) != f]
    except (KeyError, AttributeError, SyntaxError) as e:
        wrong = [f"cannot evaluate: {e!r}"]
    check(f"{name}: the Datadog query decides as the rule in all {len(cases)} scenarios", not wrong,
          f"scenarios {wrong}")

# ---- custom metrics: what each host costs in Datadog ------------------------
# One custom metric per metric name and tag combination. Per host: S
# snapshotted subvolumes, D Btrfs devices, 5 error types per device.
types = set()
for line in open(f"{d}/node-exporter-1.5.sample.prom"):
    types.update(re.findall(r'node_btrfs_device_errors_total\{.*type="(\w+)"', line))
const = subv = dev = 0
for ddname, prom in dd.items():
    labels = catalogue[prom][1]
    if "subvolume" in labels:
        subv += 1
    elif "type" in labels:
        dev += len(types)
    elif "device" in labels:
        dev += 1
    else:
        const += 1
formula = f"{const} + {subv}·S + {dev}·D"
print(f"     Datadog: {len(dd)} metric names; custom metrics per host = {formula}")
check(f"the doc states {len(dd)} scraped metrics", re.search(rf"\b{len(dd)} metric names\b", doc) is not None)
check(f"the doc states the per-host count {formula}", formula in doc)

print(f"monitoring definitions: {failed} failed")
sys.exit(1 if failed else 0)
