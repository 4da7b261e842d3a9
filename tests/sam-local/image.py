#!/usr/bin/env python3
"""Write to stdout a `docker load` archive of the two arm64 images `sam local` needs, made from
a rootfs tarball without a registry or `docker build`:

  public.ecr.aws/lambda/provided:al2023-arm64         the rootfs
  public.ecr.aws/lambda/provided:al2023-rapid-arm64   the rootfs + /var/rapid/aws-lambda-rie

`docker import` cannot be used: the daemon (Debian's 20.10) records the host's architecture
(amd64) whatever --platform says, and SAM then asks a registry for the arm64 image. The config
here says arm64, with the environment of Lambda's provided.al2023 base images.

Usage: image.py ROOTFS_TAR RIE LABEL | docker load
"""
import hashlib
import io
import json
import os
import sys
import tarfile

REPO = "public.ecr.aws/lambda/provided"
ENV = [
    "LANG=en_US.UTF-8",
    "TZ=:/etc/localtime",
    "PATH=/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
    "LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
    "LAMBDA_TASK_ROOT=/var/task",
    "LAMBDA_RUNTIME_DIR=/var/runtime",
]


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def rapid_layer(rie: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for d in ("var", "var/rapid"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            t.addfile(info)
        info = t.gettarinfo(rie, arcname="var/rapid/aws-lambda-rie")
        info.mode, info.uid, info.gid, info.uname, info.gname, info.mtime = 0o755, 0, 0, "", "", 0
        with open(rie, "rb") as f:
            t.addfile(info, f)
    return buf.getvalue()


def config(diff_ids, labels, entrypoint):
    return json.dumps({
        "architecture": "arm64",
        "os": "linux",
        "config": {"Env": ENV, "WorkingDir": "/var/task", "Entrypoint": entrypoint, "Labels": labels},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "devhive sam-local: debootstrap --variant=minbase bookworm (arm64)"}]
        + ([{"created_by": "devhive sam-local: the x86_64 aws-lambda-rie of aws-sam-cli"}] if len(diff_ids) > 1 else []),
    }, sort_keys=True).encode()


def add_bytes(out: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    out.addfile(info, io.BytesIO(data))


def main() -> int:
    rootfs, rie, label = sys.argv[1], sys.argv[2], sys.argv[3]
    base_id = sha256_file(rootfs)
    rapid = rapid_layer(rie)
    rapid_id = "sha256:" + hashlib.sha256(rapid).hexdigest()
    base_cfg = config([base_id], {"devhive.rootfs": base_id}, None)
    rapid_cfg = config([base_id, rapid_id], {"devhive.rootfs": base_id, "devhive.rie": label},
                       ["/var/rapid/aws-lambda-rie", "--log-level", "error"])
    manifest = [
        {"Config": "base.json", "RepoTags": [f"{REPO}:al2023-arm64"], "Layers": ["rootfs/layer.tar"]},
        {"Config": "rapid.json", "RepoTags": [f"{REPO}:al2023-rapid-arm64"],
         "Layers": ["rootfs/layer.tar", "rapid/layer.tar"]},
    ]
    with tarfile.open(fileobj=os.fdopen(sys.stdout.fileno(), "wb", closefd=False), mode="w|") as out:
        add_bytes(out, "base.json", base_cfg)
        add_bytes(out, "rapid.json", rapid_cfg)
        out.add(rootfs, arcname="rootfs/layer.tar")
        add_bytes(out, "rapid/layer.tar", rapid)
        add_bytes(out, "manifest.json", json.dumps(manifest).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
