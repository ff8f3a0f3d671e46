"""A loopback Hugging Face Hub: enough of its HTTP API for huggingface_hub uploads and datasets loads.

It keeps dataset repos in memory as commits (path -> bytes, LFS or regular), serves ``resolve``
downloads with ranges, the tree / paths-info / revision APIs, the preupload + LFS batch + commit
upload protocol (basic transfer, no Xet), pull requests (``refs/pr/N``), private and gated repos,
and bearer-token auth. Tests can force errors on a route, count requests, and stall an LFS upload
to kill the uploader half way. It binds 127.0.0.1 on a free port and shuts down by itself after a
hard timeout so a stuck test cannot leave it running.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

TOKEN = "hf_loopback_test_token"
LFS_SUFFIXES = (".parquet", ".arrow", ".png", ".jpg", ".bin")
GITATTRIBUTES = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(oid: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n".encode()


@dataclass
class Entry:
    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def info(self, path: str) -> dict:
        info = {"type": "file", "path": path, "size": len(self.data)}
        if self.lfs:
            pointer = lfs_pointer(self.sha256, len(self.data))
            info["oid"] = git_blob_id(pointer)
            info["lfs"] = {"oid": self.sha256, "size": len(self.data), "pointerSize": len(pointer)}
        else:
            info["oid"] = git_blob_id(self.data)
        return info


@dataclass
class Repo:
    repo_id: str
    private: bool = False
    gated: bool = False
    granted: bool = True
    commits: dict[str, dict[str, Entry]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    prs: int = 0

    def commit(self, files: dict[str, Entry], ref: str, message: str) -> str:
        parent = self.refs.get(ref, "")
        sha = hashlib.sha1(f"{parent}\n{message}\n{sorted((p, e.sha256) for p, e in files.items())}".encode())
        oid = sha.hexdigest()
        self.commits[oid] = files
        self.refs[ref] = oid
        return oid

    def resolve(self, revision: str) -> str | None:
        if revision in self.refs:
            return self.refs[revision]
        return revision if revision in self.commits else None


class HubState:
    """Everything the server knows; tests read and tweak it directly (it is guarded by a lock)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.repos: dict[str, Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []
        self.lfs_puts: list[str] = []
        self.fail: dict[str, tuple[int, str | None]] = {}  # route name -> (status, X-Error-Code)
        self.stall_puts_after: int | None = None
        self.puts_started = 0  # decided under the lock, so concurrent PUTs cannot both slip past a stall
        self.stalled = threading.Event()
        self.release = threading.Event()

    def add_repo(self, repo_id: str, files: dict[str, bytes] | None = None, **flags) -> Repo:
        with self.lock:
            repo = Repo(repo_id, **flags)
            entries = {".gitattributes": Entry(GITATTRIBUTES, False)}
            for path, data in (files or {}).items():
                entries[path] = Entry(data, path.endswith(LFS_SUFFIXES))
            repo.commit(entries, "main", "initial commit")
            self.repos[repo_id] = repo
            return repo

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        with self.lock:
            repo = self.repos[repo_id]
            return {p: e.data for p, e in repo.commits[repo.resolve(revision)].items()}


class Reply(Exception):
    """Raised inside a handler to send an error response."""

    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HubServer

    def log_message(self, format: str, *args) -> None:  # quiet
        pass

    @property
    def hub(self) -> HubState:
        return self.server.state

    # ---- plumbing -------------------------------------------------------------------------
    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, head: bool = False) -> None:
        self.send_response(status)
        headers = {"Content-Type": "application/json", **(headers or {})}
        for key, value in headers.items():
            self.send_header(key, str(value))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, value, status: int = 200, headers: dict | None = None) -> None:
        self._send(status, json.dumps(value).encode(), headers)

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        self.query = parse_qs(url.query)
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        with self.hub.lock:
            self.hub.requests.append((method, url.path))
        try:
            route, args = self._route(method, parts)
            forced = self.hub.fail.get(route)
            if forced:
                raise Reply(forced[0], f"forced {forced[0]} on {route}", forced[1])
            getattr(self, f"do_{route}")(*args)
        except Reply as reply:
            headers = {"X-Error-Message": reply.message}
            if reply.code:
                headers["X-Error-Code"] = reply.code
            body = b"" if method == "HEAD" else json.dumps({"error": reply.message}).encode()
            self._send(reply.status, body, headers, head=method == "HEAD")

    def _route(self, method: str, p: list[str]) -> tuple[str, tuple]:
        if method == "POST" and p[:3] == ["api", "repos", "create"]:
            return "create", ()
        if method == "POST" and p[:2] == ["api", "validate-yaml"]:
            return "validate_yaml", ()
        if method == "GET" and p[:2] == ["api", "whoami-v2"]:
            return "whoami", ()
        if method == "PUT" and p[0] == "lfs-upload":
            return "lfs_put", (p[1],)
        if p[0] == "api" and len(p) >= 4 and p[1] == "datasets":
            repo_id, rest = f"{p[2]}/{p[3]}", p[4:]
            if not rest and method == "GET":
                return "info", (repo_id, "main")
            kind = rest[0]
            if kind == "revision" and method == "GET":
                return "info", (repo_id, "/".join(rest[1:]))
            if kind == "tree" and method == "GET":
                return "tree", (repo_id, rest[1], "/".join(rest[2:]))
            if kind == "paths-info" and method == "POST":
                return "paths_info", (repo_id, "/".join(rest[1:]))
            if kind == "preupload" and method == "POST":
                return "preupload", (repo_id, "/".join(rest[1:]))
            if kind == "branch" and method == "POST":
                return "branch", (repo_id, "/".join(rest[1:]))
            if kind == "commit" and method == "POST":
                return "commit", (repo_id, "/".join(rest[1:]))
        if p[0] == "datasets" and len(p) >= 3:
            if method == "POST" and p[2].endswith(".git") and p[3:] == ["info", "lfs", "objects", "batch"]:
                return "lfs_batch", (f"{p[1]}/{p[2][:-4]}",)
            if method in ("GET", "HEAD") and len(p) >= 6 and p[3] == "resolve":
                return "resolve", (f"{p[1]}/{p[2]}", p[4], "/".join(p[5:]), method == "HEAD")
        raise Reply(404, f"no route for {method} /{'/'.join(p)}")

    # ---- auth -----------------------------------------------------------------------------
    def _token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        if not auth:
            return None
        if auth != f"Bearer {TOKEN}":
            raise Reply(401, "Invalid credentials in Authorization header")
        return TOKEN

    def _repo(self, repo_id: str, *, write: bool = False) -> Repo:
        token = self._token()
        if write and token is None:
            raise Reply(401, "Invalid credentials in Authorization header")
        repo = self.hub.repos.get(repo_id)
        if repo is None or (repo.private and token is None):
            raise Reply(401 if token is None else 404, "Repository not found", "RepoNotFound")
        if repo.gated and not write:
            if token is None:
                raise Reply(
                    401, "Access to this dataset is restricted; you must be authenticated", "GatedRepo"
                )
            if not repo.granted:
                raise Reply(
                    403,
                    "Access to this dataset is restricted and you are not in the authorized list",
                    "GatedRepo",
                )
        return repo

    def _snapshot(self, repo: Repo, revision: str) -> tuple[str, dict[str, Entry]]:
        sha = repo.resolve(revision)
        if sha is None:
            raise Reply(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return sha, repo.commits[sha]

    # ---- routes ---------------------------------------------------------------------------
    def do_create(self) -> None:
        if self._token() is None:
            raise Reply(401, "Invalid credentials in Authorization header")
        body = json.loads(self._body())
        repo_id = f"{body['organization']}/{body['name']}" if body.get("organization") else body["name"]
        with self.hub.lock:
            exists = repo_id in self.hub.repos
            if not exists:
                private = body.get("visibility") == "private" or bool(body.get("private"))
                self.hub.add_repo(repo_id, private=private)
        url = f"{self.server.url}/datasets/{repo_id}"
        if exists:  # like the Hub: 409, with the repo's url in the body
            self._json({"error": "You already created this dataset repo", "url": url}, status=409)
        else:
            self._json({"url": url, "name": repo_id})

    def do_validate_yaml(self) -> None:
        self._body()
        self._json({"errors": [], "warnings": []})

    def do_whoami(self) -> None:
        if self._token() is None:
            raise Reply(401, "Invalid credentials in Authorization header")
        self._json({"type": "user", "name": "loopback", "auth": {"accessToken": {"role": "write"}}})

    def do_info(self, repo_id: str, revision: str) -> None:
        with self.hub.lock:
            repo = self._repo(repo_id)
            sha, files = self._snapshot(repo, revision)
            self._json(
                {
                    "id": repo_id,
                    "_id": repo_id,
                    "sha": sha,
                    "private": repo.private,
                    "gated": "manual" if repo.gated else False,
                    "disabled": False,
                    "downloads": 0,
                    "likes": 0,
                    "tags": [],
                    "lastModified": "2024-01-01T00:00:00.000Z",
                    "siblings": [{"rfilename": path} for path in sorted(files)],
                }
            )

    def _entries(self, files: dict[str, Entry], base: str, recursive: bool) -> list[dict]:
        prefix = f"{base}/" if base else ""
        found, folders = [], set()
        for path in sorted(files):
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix) :]
            parts = rest.split("/")
            for depth in range(1, len(parts)):
                folder = prefix + "/".join(parts[:depth])
                if (recursive or depth == 1) and folder not in folders:
                    folders.add(folder)
                    found.append(
                        {"type": "directory", "path": folder, "size": 0, "oid": git_blob_id(folder.encode())}
                    )
            if recursive or len(parts) == 1:
                found.append(files[path].info(path))
        return found

    def do_tree(self, repo_id: str, revision: str, base: str) -> None:
        with self.hub.lock:
            _, files = self._snapshot(self._repo(repo_id), revision)
            entries = self._entries(files, base, self.query.get("recursive", ["False"])[0].lower() == "true")
        if base and not entries:
            raise Reply(404, f"{base} does not exist", "EntryNotFound")
        self._json(entries)

    def do_paths_info(self, repo_id: str, revision: str) -> None:
        form = parse_qs(self._body().decode())
        with self.hub.lock:
            _, files = self._snapshot(self._repo(repo_id), revision)
            result = []
            for path in form.get("paths", []):
                path = path.strip("/")
                if path in files:
                    result.append(files[path].info(path))
                elif any(p.startswith(path + "/") for p in files):
                    result.append(
                        {"type": "directory", "path": path, "size": 0, "oid": git_blob_id(path.encode())}
                    )
        self._json(result)

    def do_preupload(self, repo_id: str, revision: str) -> None:
        body = json.loads(self._body())
        with self.hub.lock:
            repo = self._repo(repo_id, write=True)
            files = repo.commits.get(repo.resolve(revision) or "", {})
            result = []
            for item in body["files"]:
                path = item["path"]
                lfs = path.endswith(LFS_SUFFIXES) or item["size"] > 10 << 20
                existing = files.get(path)
                oid = existing.info(path)["oid"] if existing else None
                if existing and existing.lfs:
                    oid = existing.sha256
                result.append(
                    {
                        "path": path,
                        "uploadMode": "lfs" if lfs else "regular",
                        "shouldIgnore": False,
                        "oid": oid,
                    }
                )
        self._json({"files": result, "commitOid": repo.resolve(revision)})

    def do_lfs_batch(self, repo_id: str) -> None:
        body = json.loads(self._body())
        with self.hub.lock:
            self._repo(repo_id, write=True)
            objects = []
            for obj in body["objects"]:
                item = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
                if obj["oid"] not in self.hub.lfs:
                    item["actions"] = {"upload": {"href": f"{self.server.url}/lfs-upload/{obj['oid']}"}}
                objects.append(item)
        self._json(
            {"transfer": "basic", "objects": objects},
            headers={"Content-Type": "application/vnd.git-lfs+json"},
        )

    def do_lfs_put(self, oid: str) -> None:
        data = self._body()
        hub = self.hub
        with hub.lock:
            hub.puts_started += 1
            stall = hub.stall_puts_after is not None and hub.puts_started > hub.stall_puts_after
        if stall:
            hub.stalled.set()
            hub.release.wait(timeout=60)
            raise Reply(503, "upload interrupted")
        if hashlib.sha256(data).hexdigest() != oid:
            raise Reply(400, "sha256 mismatch")
        with hub.lock:
            hub.lfs[oid] = data
            hub.lfs_puts.append(oid)
        self._send(200, b"")

    def do_commit(self, repo_id: str, revision: str) -> None:
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        with self.hub.lock:
            repo = self._repo(repo_id, write=True)
            _, base = self._snapshot(repo, revision)
            files = dict(base)
            message = "commit"
            for line in lines:
                key, value = line["key"], line["value"]
                if key == "header":
                    message = value["summary"]
                elif key == "file":
                    files[value["path"]] = Entry(base64.b64decode(value["content"]), False)
                elif key == "lfsFile":
                    if value["oid"] not in self.hub.lfs:
                        raise Reply(422, f"LFS object {value['oid']} was never uploaded")
                    files[value["path"]] = Entry(self.hub.lfs[value["oid"]], True)
                elif key == "deletedFile":
                    if files.pop(value["path"], None) is None:
                        raise Reply(404, "A file with this name doesn't exist", "EntryNotFound")
                elif key == "deletedFolder":
                    files = {
                        p: e for p, e in files.items() if not p.startswith(value["path"].rstrip("/") + "/")
                    }
            ref = revision
            pr_url = None
            if self.query.get("create_pr", ["0"])[0] == "1":
                repo.prs += 1
                ref = f"refs/pr/{repo.prs}"
                pr_url = f"{self.server.url}/datasets/{repo_id}/discussions/{repo.prs}"
            elif revision not in repo.refs:
                raise Reply(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            oid = repo.commit(files, ref, message)
        self._json(
            {
                "commitUrl": f"{self.server.url}/datasets/{repo_id}/commit/{oid}",
                "commitOid": oid,
                "pullRequestUrl": pr_url,
                "success": True,
            }
        )

    def do_branch(self, repo_id: str, branch: str) -> None:
        body = json.loads(self._body() or b"{}")
        with self.hub.lock:
            repo = self._repo(repo_id, write=True)
            if branch in repo.refs:
                raise Reply(409, f"branch {branch} already exists")
            sha, _ = self._snapshot(repo, body.get("startingPoint") or "main")
            repo.refs[branch] = sha
        self._json({})

    def do_resolve(self, repo_id: str, revision: str, path: str, head: bool) -> None:
        with self.hub.lock:
            sha, files = self._snapshot(self._repo(repo_id), revision)
            entry = files.get(path)
        if entry is None:
            raise Reply(404, "Entry not found", "EntryNotFound")
        info = entry.info(path)
        headers = {
            "Content-Type": "application/octet-stream",
            "X-Repo-Commit": sha,
            "ETag": f'"{info["oid"]}"',
            "Accept-Ranges": "bytes",
        }
        if entry.lfs:
            headers["X-Linked-Etag"] = f'"{entry.sha256}"'
            headers["X-Linked-Size"] = len(entry.data)
        data, status = entry.data, 200
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
        if match:
            start = int(match.group(1)) if match.group(1) else max(0, len(data) - int(match.group(2)))
            end = int(match.group(2)) if match.group(1) and match.group(2) else len(data) - 1
            end = min(end, len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start : end + 1], 206
        self._send(status, data, headers, head=head)

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")


class HubServer(ThreadingHTTPServer):
    """``with HubServer() as hub:`` serves on ``hub.url`` until the block ends or ``timeout`` passes."""

    daemon_threads = True

    def __init__(self, timeout: float = 300.0):
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = HubState()
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._timer = threading.Timer(timeout, self.stop)
        self._timer.daemon = True

    def __enter__(self) -> HubServer:
        self._thread.start()
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._timer.cancel()
        self.state.release.set()
        if self._thread.is_alive():
            self.shutdown()
        self.server_close()
