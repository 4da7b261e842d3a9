"""What a first deploy into an account would find wrong, checked on the transformed template.

Renders template.yaml through the SAM transform (tests/sam_render.py) and checks:
  names        two stacks side by side (dev and prod, and two stacks with every optional
               resource on) name no resource alike where names are unique per account/region;
  concurrency  no function reserves concurrency unless a parameter asks (defaults reserve
               nothing), and no samconfig.toml environment asks;
  iam          each function's role allows every AWS call its code makes (the calls are listed
               below from crates/realtime/src/aws/ and the handlers' wiring; the list is checked
               against the SDK operations and indexes the code names, so a new call fails here
               until it is listed and granted).
One line per check, then `template-check: N passed, M failed` (counted by make test).

  .venv/bin/python tests/template_check.py [TEMPLATE]   (default: template.yaml)
"""

import fnmatch
import json
import logging
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sam_render  # noqa: E402
from sam_render import ROOT, Context  # noqa: E402

# Resource names unique per account and region (the name property of each type). Another
# "*Name" property on a type not listed here fails the check until it is classified.
UNIQUE_NAMES = {
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::Scheduler::Schedule": "Name",
    "AWS::Scheduler::ScheduleGroup": "Name",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::CodeDeploy::Application": "ApplicationName",
    "AWS::ApiGatewayV2::Api": "Name",
    "AWS::ApiGatewayV2::DomainName": "DomainName",
    "AWS::Events::Rule": "Name",
    "AWS::S3::Bucket": "BucketName",
    "AWS::SSM::Parameter": "Name",
    "AWS::KMS::Alias": "AliasName",
}
# Name properties scoped to a parent resource of the same stack, naming something else, or not
# required to be unique.
SCOPED_NAMES = {
    ("AWS::SNS::Topic", "DisplayName"),
    ("AWS::Lambda::Alias", "Name"),
    ("AWS::Lambda::Alias", "FunctionName"),
    ("AWS::Lambda::Version", "FunctionName"),
    ("AWS::Lambda::Permission", "FunctionName"),
    ("AWS::Lambda::EventInvokeConfig", "FunctionName"),
    ("AWS::ApiGatewayV2::Stage", "StageName"),
    ("AWS::ApiGatewayV2::ApiMapping", "DomainName"),
    ("AWS::CodeDeploy::DeploymentGroup", "ApplicationName"),
    ("AWS::CodeDeploy::DeploymentGroup", "DeploymentGroupName"),
    ("AWS::CodeDeploy::DeploymentGroup", "DeploymentConfigName"),
    ("AWS::Route53::RecordSet", "Name"),
    ("AWS::DynamoDB::Table", "IndexName"),
    ("AWS::CloudWatch::Alarm", "MetricName"),
    ("AWS::ApiGatewayV2::Api", "RouteSelectionExpression"),
}
# Account-wide settings rather than named resources: two stacks set the same one.
ACCOUNT_SETTINGS = {"AWS::ApiGateway::Account"}
TEMPLATE = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "template.yaml"

# ---------------------------------------------------------------- what the code calls
# SDK operation (as the Rust SDK names it) -> IAM action. TransactWriteItems is authorised per
# item: the event store's items are Puts (events.rs append).
ACTION = {
    "get_item": "dynamodb:GetItem",
    "put_item": "dynamodb:PutItem",
    "update_item": "dynamodb:UpdateItem",
    "delete_item": "dynamodb:DeleteItem",
    "query": "dynamodb:Query",
    "scan": "dynamodb:Scan",
    "batch_write_item": "dynamodb:BatchWriteItem",
    "describe_table": "dynamodb:DescribeTable",
    "transact_write_items": "dynamodb:PutItem",
    "post_to_connection": "execute-api:ManageConnections",
    "delete_connection": "execute-api:ManageConnections",
    "get_secret_value": "secretsmanager:GetSecretValue",
    "invoke": "lambda:InvokeFunction",
}
# Operations only the dev server and tests make (#[cfg(feature = "dev")]: they create tables).
DEV_ONLY = {"create_table", "update_time_to_live"}

CONN = "<ConnectionsTable.Arn>"
EVENTS = "<EventsTable.Arn>"


def index(name):
    return f"{CONN}/index/{name}"


POST = "arn:aws:execute-api:{region}:{account}:<WebSocketApi>/{stage}/POST/@connections/c1"
DELETE = "arn:aws:execute-api:{region}:{account}:<WebSocketApi>/{stage}/DELETE/@connections/c1"
JWT = "{jwt}"
DB = "{db}"
ALIAS = "<BroadcasterFunctionAliaslive>"

# Fan-out, presence and revocation, shared by every function that posts to connections:
# fanout.rs (project_subscribers/user_connections, remove_many, revocation::expire ->
# remove_expired, post), presence.rs (project_sample, user_connections, get),
# revocation.rs (post, close).
FANOUT = [
    ("query", index("project_id-index")),
    ("query", index("user_id-index")),
    ("get_item", CONN),
    ("batch_write_item", CONN),
    ("delete_item", CONN),
    ("post_to_connection", POST),
    ("delete_connection", DELETE),
]
SECRETS = [("get_secret_value", JWT), ("get_secret_value", DB)]  # DB: when there is a database

CALLS = {
    # lifecycle.rs connect: insert (PutItem), remove on a failed insert, the per-user cap
    # (user_connections); presence; the JWT and the database URL (wiring authenticator, membership).
    "ConnectFunction": [("put_item", CONN), ("delete_item", CONN), *FANOUT, *SECRETS],
    # lifecycle.rs disconnect: get, remove; presence.
    "DisconnectFunction": [("get_item", CONN), ("delete_item", CONN), *FANOUT],
    # message routes: subscribe/unsubscribe/refresh/typing/rate (UpdateItem), unsubscribe_from;
    # events head (GetItem), head_or_create (UpdateItem), since (Query on the events table).
    "SubscribeFunction": [
        ("update_item", CONN), *FANOUT,
        ("get_item", EVENTS), ("update_item", EVENTS), ("query", EVENTS),
        *SECRETS,
    ],
    # status.rs: project_subscribers, approximate_total (DescribeTable); JWT and membership.
    "StatusFunction": [("query", index("project_id-index")), ("describe_table", CONN), *SECRETS],
    # broadcaster.rs: fan-out (Everyone scans), revocation (unsubscribe_from: UpdateItem),
    # event append (head_or_create, TransactWriteItems of Puts, the gap's PutItem, appended's GetItem).
    "BroadcasterFunction": [
        *FANOUT, ("scan", CONN), ("update_item", CONN),
        ("get_item", EVENTS), ("update_item", EVENTS), ("transact_write_items", EVENTS), ("put_item", EVENTS),
    ],
    # sweeper.rs: reconnect_due; presence follow-up over the fan-out.
    "SweeperFunction": [("query", index("reconnect_at-index")), *FANOUT],
    # relay: LambdaInvoker (realtime-client publisher.rs) on BROADCASTER_FUNCTION_NAME, the
    # broadcaster's live alias; the database URL.
    "RelayFunction": [("invoke", ALIAS), ("get_secret_value", DB)],
}


class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            print(f"ok    {what}")
        else:
            self.failed += 1
            print(f"FAIL  {what}{': ' + detail if detail else ''}")


def code_calls():
    """SDK operations and DynamoDB index names the Rust code names."""
    files = sorted((ROOT / "crates/realtime/src/aws").glob("*.rs"))
    files.append(ROOT / "crates/realtime-client/src/publisher.rs")
    ops = {}
    pattern = re.compile(
        r"\.\s*([a-z_]+)\(\)\s*\.\s*(?:table_name|function_name|secret_id|connection_id|transact_items|request_items)\("
    )
    for f in files:
        for op in pattern.findall(f.read_text()):
            ops.setdefault(op, set()).add(f.relative_to(ROOT).as_posix())
    store = (ROOT / "crates/realtime/src/connection/store.rs").read_text()
    indexes = set(re.findall(r'pub const \w+_INDEX: &str = "([^"]+)"', store))
    return ops, indexes


def functions(t, ctx):
    return {
        n: r for n, r in t["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function" and ctx.exists(r)
    }


def statements(t, ctx, function):
    """The resolved statements of a function's role (inline policies and stack managed policies)."""
    role = function["Properties"]["Role"]
    role_id = role["Fn::GetAtt"][0] if isinstance(role.get("Fn::GetAtt"), list) else role["Fn::GetAtt"].split(".")[0]
    props = ctx.resolve(t["Resources"][role_id]["Properties"])
    out = []
    for p in props.get("Policies", []):
        out += as_list(p["PolicyDocument"]["Statement"])
    for arn in props.get("ManagedPolicyArns", []):
        m = re.fullmatch(r"<(\w+)>", str(arn))
        if m and m.group(1) in t["Resources"]:
            doc = ctx.resolve(t["Resources"][m.group(1)]["Properties"]["PolicyDocument"])
            out += as_list(doc["Statement"])
    return out


def as_list(x):
    return x if isinstance(x, list) else [x]


def allows(stmts, action, resource):
    for s in stmts:
        if s.get("Effect") != "Allow":
            continue
        if not any(fnmatch.fnmatchcase(action, a) for a in as_list(s.get("Action", []))):
            continue
        if any(fnmatch.fnmatchcase(resource, str(r)) for r in as_list(s.get("Resource", []))):
            return True
    return False


def check_iam(report, label, t, ctx, params):
    fns = functions(t, ctx)
    fmt = {
        "region": ctx.values["AWS::Region"],
        "account": ctx.values["AWS::AccountId"],
        "stage": params["StageName"],
        "jwt": "<JwtSigningSecret>" if ctx.condition("CreateJwtSecret") else params["JwtSecretArn"],
        "db": params["DatabaseUrlSecretArn"],
    }
    for name, calls in CALLS.items():
        if name not in fns:
            continue
        stmts = statements(t, ctx, fns[name])
        missing = []
        for op, resource in calls:
            if resource == DB and not fmt["db"]:
                continue
            r = resource.format(**fmt)
            if not allows(stmts, ACTION[op], r):
                missing.append(f"{ACTION[op]} on {r}")
        report.check(not missing, f"iam {label}: {name}'s role allows the {len(calls)} calls its code makes",
                     "; ".join(missing))


def names(t, ctx, report, label):
    """(type, property) -> {resolved name: logical id}, for names unique per account/region;
    names taken from a parameter as they stand are the operator's per-stack choice."""
    out = {}
    for logical, r in t["Resources"].items():
        if not ctx.exists(r):
            continue
        kind = r["Type"]
        props = r.get("Properties", {})
        for key, raw in props.items():
            if not key.endswith("Name") or (kind, key) in SCOPED_NAMES:
                continue
            if UNIQUE_NAMES.get(kind) != key:
                out.setdefault(("unclassified", ""), {})[f"{kind}.{key}"] = logical
                continue
            if isinstance(raw, dict) and list(raw) == ["Ref"] and raw["Ref"] in t.get("Parameters", {}):
                continue
            value = ctx.resolve(raw)
            if value is not None:
                out.setdefault((kind, key), {})[str(value)] = logical
    return out


def check_pair(report, label, template, a, b):
    """Render two stacks (stack name, overrides) and compare their unique names."""
    renders = []
    for stack, overrides in (a, b):
        t = sam_render.render(template, overrides, stack)
        params = sam_render.parameter_values(template, overrides)
        renders.append((t, Context(t, params, stack), params))
    (ta, ca, _), (tb, cb, _) = renders
    na, nb = names(ta, ca, report, label), names(tb, cb, report, label)
    unclassified = sorted(set(na.pop(("unclassified", ""), {})) | set(nb.pop(("unclassified", ""), {})))
    report.check(not unclassified, f"names {label}: every name property is classified (unique per account, or scoped)",
                 f"{unclassified}: add each to UNIQUE_NAMES or SCOPED_NAMES in tests/template_check.py")
    collisions = []
    counted = 0
    for key in na:
        counted += len(na[key])
        for value in set(na[key]) & set(nb.get(key, {})):
            collisions.append(f"{na[key][value]} ({key[0]}.{key[1]} = {value!r})")
    report.check(not collisions and counted > 0,
                 f"names {label}: {a[0]} and {b[0]} share none of {counted} account-unique names",
                 "collide: " + ", ".join(collisions))
    for (t, ctx), stack in ((ta, ca), a[0]), ((tb, cb), b[0]):
        shared = sorted(n for n, r in t["Resources"].items() if r["Type"] in ACCOUNT_SETTINGS and ctx.exists(r))
        if shared:
            print(f"note  names {label}: {stack} sets account-wide {', '.join(shared)} (one per account and region; "
                  "the stacks share it, retained on delete)")
    return renders


def reservation_ok(value, template):
    """Absent, or Fn::If [cond, Ref P, Ref AWS::NoValue] with P a Number parameter defaulting to 0
    and cond true exactly when P is not 0."""
    if value is None:
        return True
    if not (isinstance(value, dict) and list(value) == ["Fn::If"]):
        return False
    cond, then, otherwise = value["Fn::If"]
    if otherwise != {"Ref": "AWS::NoValue"} or not (isinstance(then, dict) and list(then) == ["Ref"]):
        return False
    param = template.get("Parameters", {}).get(then["Ref"])
    if not param or str(param.get("Default")) != "0":
        return False
    expected = {"Fn::Not": [{"Fn::Equals": [{"Ref": then["Ref"]}, 0]}]}
    return template.get("Conditions", {}).get(cond) == expected


def check_concurrency(report, template, rendered):
    glob = template.get("Globals", {}).get("Function", {})
    report.check("ReservedConcurrentExecutions" not in glob, "concurrency: Globals reserve nothing")
    bad = []
    for label, t, source in [("template.yaml", template, template)] + [(lbl, r, template) for lbl, r in rendered]:
        for n, r in t["Resources"].items():
            if r["Type"] in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
                v = r.get("Properties", {}).get("ReservedConcurrentExecutions")
                if not reservation_ok(v, source):
                    bad.append(f"{label} {n}: {json.dumps(v)}")
    report.check(not bad, "concurrency: every ReservedConcurrentExecutions is a parameter defaulting to 0 (none reserved)",
                 "; ".join(bad))
    asked = []
    for env in ("dev", "prod"):
        for k, v in sam_render.samconfig_overrides(env).items():
            if "ReservedConcurrency" in k and v not in ("", "0"):
                asked.append(f"{env}: {k}={v}")
    report.check(not asked, "concurrency: samconfig.toml's environments reserve none (a new account's quota is 10 or 50)",
                 "; ".join(asked) + " (README \"Deploy\": set it at deploy time once the account's quota allows)")


def check_calls_listed(report):
    ops, indexes = code_calls()
    listed = {op for calls in CALLS.values() for op, _ in calls}
    unlisted = sorted(f"{op} ({', '.join(sorted(files))})" for op, files in ops.items()
                      if op not in listed and op not in DEV_ONLY)
    report.check(bool(ops) and not unlisted, f"iam: the {len(ops)} SDK operations the code makes are each listed in CALLS",
                 "not listed: " + ", ".join(unlisted))
    queried = {r.split("/index/")[1] for calls in CALLS.values() for _, r in calls if "/index/" in r}
    report.check(bool(indexes) and indexes <= queried, f"iam: each of the code's {len(indexes)} indexes is queried by some function in CALLS",
                 f"missing: {sorted(indexes - queried)}")
    template = sam_render.load_template(TEMPLATE)
    gsi = {g["IndexName"] for g in template["Resources"]["ConnectionsTable"]["Properties"]["GlobalSecondaryIndexes"]}
    report.check(indexes == gsi, "iam: the table's indexes are the code's", f"template {sorted(gsi)}, code {sorted(indexes)}")


def main():
    logging.disable(logging.WARNING)  # the translator's feature-toggle notices
    report = Report()
    template = sam_render.load_template(TEMPLATE)
    dev = sam_render.samconfig_overrides("dev")
    # prod as `make deploy-guided ENV=prod` completes it: a database (Membership=postgres needs one).
    db_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:devhive/database-url-AbCdEf"
    prod = {**sam_render.samconfig_overrides("prod"), "DatabaseUrlSecretArn": db_arn, "AlarmEmail": "ops@example.com"}
    # Every optional resource on: custom domains with records, an existing alarm topic, VPC.
    full = {
        **prod,
        "WebSocketDomainName": "realtime.example.com", "StatusDomainName": "status.example.com",
        "DomainCertificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/abc",
        "HostedZoneId": "Z123", "AlarmTopicArn": "arn:aws:sns:eu-west-1:123456789012:oncall",
        "SubnetIds": "subnet-1,subnet-2", "SecurityGroupIds": "sg-1",
        "StatusAllowedOrigins": "https://app.example.com",
        "JwtSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:devhive/jwt-AbCdEf",
    }
    rendered = []
    pairs = [
        ("dev+prod", ("devhive-realtime-dev", dev), ("devhive-realtime-prod", prod)),
        ("all-optional", ("devhive-realtime-a", full), ("devhive-realtime-b", full)),
    ]
    for label, a, b in pairs:
        renders = check_pair(report, label, template, a, b)
        for (t, ctx, params), (stack, _) in zip(renders, (a, b)):
            rendered.append((stack, t))
            check_iam(report, stack, t, ctx, params)
    check_concurrency(report, template, rendered)
    check_calls_listed(report)
    print(f"template-check: {report.passed} passed, {report.failed} failed")
    sys.exit(1 if report.failed else 0)


if __name__ == "__main__":
    main()
