#!/usr/bin/env python3
"""manifest_restore.py — rebuild a data directory from a drbackup backup, independently of
drbackup's own restore code: the test reads the manifest (JSON lines), fetches each object
once with `drbackup repo-get`, cuts every file out of its object at its offset, checks its
SHA-256 against the manifest, and writes backup_label / tablespace_map from the header.

usage: manifest_restore.py DRBACKUP-CMD STANZA LABEL TARGET
  DRBACKUP-CMD: the drbackup command line as one string (binary + --config ... [--repo=N])
Prints "files=N objects=M bytes=B" on success; exits 1 with a message on any mismatch.
"""
import hashlib
import json
import os
import shlex
import subprocess
import sys
import tempfile

cmd, stanza, label, target = sys.argv[1:5]
base = shlex.split(cmd)


def repo_get(path, local):
    subprocess.run(base + ["repo-get", path, local], check=True)


def die(msg):
    print("manifest_restore: " + msg, file=sys.stderr)
    sys.exit(1)


with tempfile.TemporaryDirectory() as tmp:
    man = os.path.join(tmp, "manifest")
    repo_get("stanza/%s/backup/%s/backup.manifest" % (stanza, label), man)
    lines = open(man).read().splitlines()
    head = json.loads(lines[0])
    end = json.loads(lines[-1])
    entries = [json.loads(l) for l in lines[1:-1]]
    if not end.get("end") or end.get("entries") != len(entries):
        die("manifest end line wrong: %r" % end)
    if head["label"] != label:
        die("manifest label %s != %s" % (head["label"], label))
    objects = {}
    nbytes = 0
    os.makedirs(target, exist_ok=True)
    for e in entries:
        p = os.path.join(target, e["p"])
        if e["t"] == "d":
            os.makedirs(p, exist_ok=True)
            os.chmod(p, e["m"])
        elif e["t"] == "l":
            die("tablespace links are not handled by this test helper")
        else:
            data = b""
            if e["s"] > 0:
                key = (e["r"], e["o"])
                if key not in objects:
                    local = os.path.join(tmp, "obj%d" % len(objects))
                    repo_get("stanza/%s/backup/%s/%s" % (stanza, e["r"], e["o"]), local)
                    objects[key] = local
                with open(objects[key], "rb") as f:
                    f.seek(e.get("off", 0))
                    data = f.read(e["s"])
            if len(data) != e["s"]:
                die("%s: %d bytes in the object, manifest says %d" % (e["p"], len(data), e["s"]))
            if hashlib.sha256(data).hexdigest() != e["h"]:
                die("%s: checksum mismatch" % e["p"])
            with open(p, "wb") as f:
                f.write(data)
            os.chmod(p, e["m"])
            os.utime(p, (e["mt"], e["mt"]))
            nbytes += len(data)
    with open(os.path.join(target, "backup_label"), "w") as f:
        f.write(head["backup-label"])
    if head.get("tablespace-map"):
        with open(os.path.join(target, "tablespace_map"), "w") as f:
            f.write(head["tablespace-map"])
    print("files=%d objects=%d bytes=%d" % (sum(1 for e in entries if e["t"] == "f"),
                                             len(objects), nbytes))
