"""template.yaml as CloudFormation receives it after the SAM transform, rendered offline.

`sam deploy` hands CloudFormation the template with its transforms; CloudFormation runs
AWS::LanguageExtensions, then AWS::Serverless-2016-10-31. This renders the same result
locally with the SAM CLI's translator (aws-sam-translator, as `sam validate` runs it): the one
language extension the template uses, an Fn::If in DeletionPolicy / UpdateReplacePolicy, is
resolved for the given parameters first, and the SAM transform runs on the rest. Everything
else (Refs to parameters, Subs, conditions) is left for CloudFormation.

Used by tests/template_check.py (make test) and tests/deploy-rehearsal/ (make deploy-rehearsal).
Runs in the tool venv (.venv), which has the SAM CLI.

  .venv/bin/python tests/sam_render.py --env dev --stack devhive-realtime-dev \
      --code s3://bucket/prefix -o target/dev.json
"""

import argparse
import copy
import json
import re
import shlex
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REGION = "eu-west-1"
ACCOUNT = "123456789012"


def load_template(path=ROOT / "template.yaml"):
    try:
        from samcli.yamlhelper import yaml_parse
    except ImportError:
        sys.exit("sam_render: the SAM CLI is not importable: run with the tool venv (make's .venv/bin/python)")
    return yaml_parse(Path(path).read_text())


def samconfig_overrides(env, path=ROOT / "samconfig.toml"):
    """The parameter_overrides of samconfig.toml's [env.deploy.parameters], as a dict."""
    config = tomllib.loads(Path(path).read_text())
    raw = config.get(env, {}).get("deploy", {}).get("parameters", {}).get("parameter_overrides", "")
    if isinstance(raw, list):
        raw = " ".join(raw)
    out = {}
    for word in shlex.split(raw):
        key, _, value = word.partition("=")
        out[key] = value
    return out


def samconfig_region(env, path=ROOT / "samconfig.toml"):
    config = tomllib.loads(Path(path).read_text())
    return config.get(env, {}).get("global", {}).get("parameters", {}).get("region", REGION)


def parameter_values(template, overrides):
    """Every parameter's value: its default unless overridden (as CloudFormation resolves them)."""
    values = {}
    for name, p in template.get("Parameters", {}).items():
        if name in overrides:
            values[name] = overrides[name]
        elif "Default" in p:
            values[name] = p["Default"]
        if p.get("Type") == "CommaDelimitedList" and isinstance(values.get(name), str):
            values[name] = [] if values[name] == "" else values[name].split(",")
    unknown = set(overrides) - set(template.get("Parameters", {}))
    if unknown:
        raise ValueError(f"overrides name parameters the template lacks: {sorted(unknown)}")
    return values


def pseudo(stack, region=REGION, account=ACCOUNT):
    return {
        "AWS::StackName": stack,
        "AWS::Region": region,
        "AWS::AccountId": account,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackId": f"arn:aws:cloudformation:{region}:{account}:stack/{stack}/00000000",
        "AWS::NoValue": None,
    }


class Context:
    """Values to resolve intrinsics with: parameters, pseudo parameters, conditions. A Ref or
    GetAtt of a resource resolves to a token naming it (`<Logical>` / `<Logical.Attr>`), so a
    resolved name or ARN still says which resource it points at."""

    def __init__(self, template, params, stack, region=REGION, account=ACCOUNT):
        self.template = template
        self.values = {**params, **pseudo(stack, region, account)}
        self.conditions = template.get("Conditions", {})
        self._evaluated = {}

    def condition(self, name):
        if name not in self._evaluated:
            self._evaluated[name] = bool(self.resolve(self.conditions[name]))
        return self._evaluated[name]

    def exists(self, resource):
        cond = resource.get("Condition")
        return cond is None or self.condition(cond)

    def resolve(self, v):
        if isinstance(v, list):
            return [x for x in (self.resolve(x) for x in v) if x is not None]
        if not isinstance(v, dict):
            return v
        if len(v) == 1:
            (k, a), = v.items()
            if k == "Ref":
                if a in self.values:
                    return self.values[a]
                return f"<{a}>"
            if k == "Fn::GetAtt":
                a = a.split(".", 1) if isinstance(a, str) else a
                return f"<{a[0]}.{a[1]}>"
            if k == "Fn::Sub":
                text, extra = (a, {}) if isinstance(a, str) else (a[0], a[1])
                extra = {n: self.resolve(x) for n, x in extra.items()}

                def sub(m):
                    name = m.group(1)
                    if name.startswith("!"):
                        return "${" + name[1:] + "}"
                    if name in extra:
                        return str(extra[name])
                    if name in self.values:
                        val = self.values[name]
                        return ",".join(val) if isinstance(val, list) else str(val)
                    return f"<{name}>"

                return re.sub(r"\$\{([^}]+)\}", sub, text)
            if k == "Fn::If":
                return self.resolve(a[1] if self.condition(a[0]) else a[2])
            if k == "Fn::Equals":
                x, y = (self.resolve(a[0]), self.resolve(a[1]))
                return str(x) == str(y)
            if k == "Fn::Not":
                return not self.resolve(a[0])
            if k == "Fn::And":
                return all(self.resolve(x) for x in a)
            if k == "Fn::Or":
                return any(self.resolve(x) for x in a)
            if k == "Condition":
                return self.condition(a)
            if k == "Fn::Join":
                parts = self.resolve(a[1])
                if isinstance(parts, str):
                    parts = [parts]
                return a[0].join(",".join(p) if isinstance(p, list) else str(p) for p in parts)
            if k == "Fn::Select":
                return self.resolve(a[1])[int(self.resolve(a[0]))]
            if k == "Fn::Split":
                return str(self.resolve(a[1])).split(a[0])
        out = {}
        for key, x in v.items():
            r = self.resolve(x)
            if r is not None:
                out[key] = r
        return out


def render(template, overrides, stack, code_uris=None, region=REGION, account=ACCOUNT):
    """The transformed template (a dict) for `overrides` and `stack`. `code_uris` maps each
    function's logical id to its artifact's s3:// URI (default: a placeholder per function)."""
    from samtranslator.parser import parser
    from samtranslator.translator.translator import Translator

    t = copy.deepcopy(template)
    params = parameter_values(t, overrides)
    ctx = Context(t, params, stack, region, account)
    # AWS::LanguageExtensions, for what this template asks of it: policies chosen by condition.
    transforms = t.get("Transform", [])
    transforms = [transforms] if isinstance(transforms, str) else list(transforms)
    for name, r in t["Resources"].items():
        for attr in ("DeletionPolicy", "UpdateReplacePolicy"):
            if isinstance(r.get(attr), dict):
                r[attr] = ctx.resolve(r[attr])
    used = json.dumps(t)
    for other in ("Fn::ForEach", "Fn::Length", "Fn::ToJsonString"):
        if other in used:
            raise ValueError(f"the template uses {other}: sam_render resolves only Fn::If in policies")
    t["Transform"] = [x for x in transforms if x != "AWS::LanguageExtensions"]
    t.get("Globals", {}).get("Function", {}).pop("CodeUri", None)
    for name, r in t["Resources"].items():
        if r["Type"] == "AWS::Serverless::Function":
            r["Properties"]["CodeUri"] = (code_uris or {}).get(name, f"s3://artifacts/{name}.zip")
    values = dict(params)
    values.update({k: v for k, v in pseudo(stack, region, account).items() if v is not None})
    for k, v in values.items():
        if isinstance(v, list):
            values[k] = ",".join(v)
    import boto3

    session = boto3.Session(region_name=region)  # no credentials are read: nothing is called
    out = Translator(managed_policy_map=None, sam_parser=parser.Parser(), plugins=[], boto_session=session).translate(
        sam_template=t, parameter_values=values, get_managed_policy_map=lambda: {}
    )
    return out


def main():
    import logging

    logging.disable(logging.WARNING)  # the translator's feature-toggle notices
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--env", required=True, help="samconfig.toml environment (its parameter_overrides)")
    ap.add_argument("--stack", required=True)
    ap.add_argument("--region")
    ap.add_argument("--code", help="s3://bucket/prefix holding <function>.zip (default: placeholders)")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()
    template = load_template()
    code = None
    if args.code:
        base = args.code.rstrip("/")
        code = {
            n: f"{base}/{n}.zip"
            for n, r in template["Resources"].items()
            if r["Type"] == "AWS::Serverless::Function"
        }
    region = args.region or samconfig_region(args.env)
    out = render(template, samconfig_overrides(args.env), args.stack, code, region=region)
    Path(args.output).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
