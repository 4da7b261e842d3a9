#!/usr/bin/env python3
"""Write the template `sam local` runs the functions from: template.yaml as it is, with, for
each AWS::Serverless::Function,

- CodeUri pointing at the arm64 artifact `make build` made (target/lambda/<Binary>/bootstrap,
  what `sam deploy` ships) and no build Metadata (nothing for SAM to build),
- no Condition (the relay's HasDatabase: `sam local` should see every function),
- an HttpApi event for each route of the HTTP API (start-api cannot follow the routes' `live`
  alias to the function),
- the variables only local runs need declared in its Environment, because `sam local` passes
  `--env-vars` values only for variables the template declares: JWT_SECRET (the development
  secret, so JWT_SECRET_ARN is blank), AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_LAMBDA,
  DATABASE_URL; and a local value for each variable whose deployed value is an intrinsic
  (!Ref/!Sub/!If) that `sam local` would pass blank.

Usage: local-template.py TEMPLATE OUT [NAME=VALUE …]   (NAME=VALUE replaces a default below;
run with the venv's python: it reads YAML with SAM's
own loader, which keeps !Ref and friends). template.yaml itself is not changed.
"""
import os
import sys

from samcli.yamlhelper import yaml_dump, yaml_parse

# Defaults for `sam local invoke … --env-vars tests/events/sam-env.json`, which overrides them:
# services on the host as the README's set-up runs them (DynamoDB Local on 8000, make dev on
# 8080, start-lambda on 3001), reached from the container as host.docker.internal.
LOCAL = {
    "JWT_SECRET": "devhive-realtime-development-secret-do-not-deploy",
    "JWT_SECRET_ARN": "",
    "DATABASE_URL_SECRET_ARN": "",
    "DATABASE_URL": "",
    "MEMBERSHIP": "none",
    "CONNECTIONS_TABLE": "devhive-connections",
    "EVENTS_TABLE": "",
    "WEBSOCKET_ENDPOINT": "http://host.docker.internal:8080/dev",
    "AWS_ENDPOINT_URL_DYNAMODB": "http://host.docker.internal:8000",
    "AWS_ENDPOINT_URL_LAMBDA": "http://host.docker.internal:3001",
    "BROADCASTER_FUNCTION_NAME": "BroadcasterFunction",
    "STACK_NAME": "devhive-realtime-local",
    "METRICS_NAMESPACE": "DevHive/Realtime",
}


def main() -> int:
    source, out = sys.argv[1], sys.argv[2]
    for pair in sys.argv[3:]:
        name, _, value = pair.partition("=")
        if name not in LOCAL:
            sys.exit(f"local-template: {name} is not one of {', '.join(LOCAL)}")
        LOCAL[name] = value
    with open(source) as f:
        template = yaml_parse(f.read())
    lambda_dir = os.path.relpath(os.path.join(os.path.dirname(os.path.abspath(source)), "target", "lambda"),
                                 os.path.dirname(os.path.abspath(out)))
    globals_fn = template.get("Globals", {}).get("Function", {})
    globals_fn.pop("CodeUri", None)
    names = []
    for name, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        binary = resource.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
        if not binary:
            sys.exit(f"local-template: {name} has no Metadata.BuildProperties.Binary")
        resource.pop("Metadata", None)
        resource.pop("Condition", None)
        props = resource.setdefault("Properties", {})
        props["CodeUri"] = os.path.join(lambda_dir, binary)
        variables = props.setdefault("Environment", {}).setdefault("Variables", {})
        for key, value in LOCAL.items():
            if key not in variables or not isinstance(variables[key], str):
                variables[key] = value
        names.append(f"{name}={binary}")
    # The HTTP API's routes reach their function through its `live` alias, which `sam local
    # start-api` cannot follow (it answers "Template does not have any APIs connected to Lambda
    # functions"): each such route becomes an HttpApi event of the function itself.
    resources = template["Resources"]
    functions = {n for n, r in resources.items() if r.get("Type") == "AWS::Serverless::Function"}
    for route_name, route in resources.items():
        if route.get("Type") != "AWS::ApiGatewayV2::Route":
            continue
        props = route.get("Properties", {})
        api = resources.get(props.get("ApiId", {}).get("Ref", "") if isinstance(props.get("ApiId"), dict) else "", {})
        if api.get("Properties", {}).get("ProtocolType") != "HTTP":
            continue
        target = props.get("Target", {})
        target = target.get("Fn::Sub", "") if isinstance(target, dict) else str(target)
        integration = resources.get(target.removeprefix("integrations/${").removesuffix("}"), {})
        uri = integration.get("Properties", {}).get("IntegrationUri")
        ref = uri.get("Ref", "") if isinstance(uri, dict) else ""
        function = ref.removesuffix("Aliaslive")
        method, _, path = props.get("RouteKey", "").partition(" ")
        if function in functions and path:
            events = resources[function]["Properties"].setdefault("Events", {})
            events[f"Local{route_name}"] = {"Type": "HttpApi", "Properties": {"Method": method, "Path": path}}
    # The global variables with intrinsic values (CONNECTIONS_TABLE, …) are declared on each
    # function now; blank them here so no unresolved intrinsic is left for `sam local`.
    gvars = globals_fn.get("Environment", {}).get("Variables", {})
    for key in list(gvars):
        if not isinstance(gvars[key], str):
            gvars[key] = LOCAL.get(key, "")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out + ".tmp", "w") as f:
        f.write("# Generated by tests/sam-local/local-template.py from template.yaml: do not edit.\n")
        f.write(yaml_dump(template))
    os.replace(out + ".tmp", out)
    print(" ".join(names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
