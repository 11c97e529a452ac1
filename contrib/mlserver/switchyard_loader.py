"""Switchyard's artifact loader for MLServer (tested with 1.7.1).

A model repository for MLServer that loads the version Switchyard names from
that version's ``artifact_uri``, so Switchyard never writes into the model
server's folders: the model server reads the version itself.

MLServer's repository API (``POST /v2/repository/models/{name}/load``) takes
no body: MLServer loads whatever its model repository implementation finds
for that name. This repository finds exactly one version per model, the one
Switchyard last told it about on its own small HTTP listener:

    PUT /v1/models/{name}   {"version": "3", "artifact_uri": "file:///srv/artifacts/echo/3"}

The version is checked at once (the folder exists on this host, holds a
``model-settings.json`` naming this model and this version) and refused with
the reason otherwise, before Switchyard unloads anything. Switchyard then
calls MLServer's own load, which reads the version's folder in place: the
model's code is imported from there and ``parameters.uri`` defaults to it.

Install: put this file on the model server's Python path (next to
``settings.json`` with ``PYTHONPATH``) and add to ``settings.json``:

    "model_repository_implementation": "switchyard_loader.ArtifactRepository",
    "model_repository_implementation_args": {"listen": "127.0.0.1:9181"}

``artifact_uri`` may be ``file:///ABSOLUTE/PATH`` or an absolute path: a
folder on this host (a local disk or a network mount). Other schemes (s3://,
gs://, http://, runs:/, models:/) are refused with the reason: this loader
does not download. The listener has no authentication (like HAProxy's
Runtime API): bind it to loopback or a private network. What it was told is
kept in memory: a restarted model server holds nothing until the next load.
"""

import json
import os
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional, Tuple

from mlserver.errors import MLServerError, ModelNotFound
from mlserver.logging import logger
from mlserver.repository.load import load_model_settings
from mlserver.repository.repository import (
    DEFAULT_MODEL_SETTINGS_FILENAME,
    ModelRepository,
)
from mlserver.settings import ModelSettings

PROTOCOL = 1

# Model name -> (version, artifact_uri). Module-level: MLServer builds its
# repository twice at start-up, and both must share one listener and state.
_wanted: Dict[str, Tuple[str, str]] = {}
_lock = threading.Lock()
_listener: Optional[ThreadingHTTPServer] = None


class Refused(ValueError):
    pass


def folder_of(uri: str) -> str:
    """The local folder an artifact_uri names, or Refused saying why not."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise Refused(
                f"artifact_uri {uri!r} names host {parsed.netloc!r}: use file:///PATH "
                "(a folder on the model server's host or a network mount)"
            )
        path = urllib.parse.unquote(parsed.path)
    elif parsed.scheme == "":
        path = uri
    else:
        raise Refused(
            f"artifact_uri {uri!r}: this loader reads file:// URIs and absolute paths "
            f"on the model server's host, not {parsed.scheme}:// (it does not download; "
            "mount the artifact store on the model server's host, or deploy by folder copy)"
        )
    if not os.path.isabs(path):
        raise Refused(f"artifact_uri {uri!r} is not an absolute path")
    if not os.path.isdir(path):
        raise Refused(
            f"artifact_uri {uri!r}: {path} is not a folder on the model server's host "
            "(is the artifact store mounted there?)"
        )
    return path


def settings_for(name: str, version: str, uri: str) -> ModelSettings:
    """The model settings of `version` read from its artifact, or Refused."""
    path = os.path.join(folder_of(uri), DEFAULT_MODEL_SETTINGS_FILENAME)
    if not os.path.isfile(path):
        raise Refused(f"artifact_uri {uri!r}: no {DEFAULT_MODEL_SETTINGS_FILENAME} in {os.path.dirname(path)}")
    try:
        settings = load_model_settings(path)
    except Exception as e:  # pydantic's errors, unreadable JSON
        raise Refused(f"artifact_uri {uri!r}: {path} is not valid model settings: {e}")
    if settings.name != name:
        raise Refused(
            f"artifact_uri {uri!r}: {path} names model {settings.name!r}, not {name!r} "
            "(set \"name\" in it)"
        )
    found = settings.parameters.version if settings.parameters else None
    if found is None:
        settings.parameters.version = version
    elif found != version:
        raise Refused(
            f"artifact_uri {uri!r}: {path} is version {found!r}, not {version!r} "
            "(the version's artifact_uri points at another version's folder)"
        )
    return settings


class _Handler(BaseHTTPRequestHandler):
    def _answer(self, status: int, body: dict):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _name(self) -> Optional[str]:
        prefix = "/v1/models/"
        if not self.path.startswith(prefix):
            return None
        name = urllib.parse.unquote(self.path[len(prefix):])
        return name if name and "/" not in name else None

    def do_GET(self):
        if self.path == "/v1/health":
            return self._answer(200, {"loader": "switchyard", "protocol": PROTOCOL})
        name = self._name()
        if name is None:
            return self._answer(404, {"error": f"no such path {self.path}"})
        with _lock:
            wanted = _wanted.get(name)
        if wanted is None:
            return self._answer(404, {"error": f"nothing was asked for model {name}"})
        return self._answer(200, {"model": name, "version": wanted[0], "artifact_uri": wanted[1]})

    def do_PUT(self):
        name = self._name()
        if name is None:
            return self._answer(404, {"error": f"no such path {self.path}"})
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            version, uri = body["version"], body["artifact_uri"]
            if not isinstance(version, str) or not isinstance(uri, str):
                raise KeyError("version and artifact_uri must be strings")
        except (ValueError, KeyError) as e:
            return self._answer(400, {"error": f"expected {{\"version\": …, \"artifact_uri\": …}}: {e}"})
        try:
            settings = settings_for(name, version, uri)
        except Refused as e:
            return self._answer(400, {"error": str(e)})
        with _lock:
            _wanted[name] = (version, uri)
        logger.info(f"Switchyard loader: model {name} version {version} from {uri}")
        return self._answer(
            200, {"model": name, "version": version, "folder": os.path.dirname(settings._source or "")}
        )

    def log_message(self, format, *args):  # MLServer's log is enough
        pass


def _listen(address: str):
    global _listener
    if _listener is not None:
        return
    host, _, port = address.rpartition(":")
    _listener = ThreadingHTTPServer((host or "127.0.0.1", int(port)), _Handler)
    threading.Thread(target=_listener.serve_forever, name="switchyard-loader", daemon=True).start()
    logger.info(f"Switchyard loader listening on {address}")


class ArtifactRepository(ModelRepository):
    """MLServer model repository: one version per model, read from its artifact_uri."""

    def __init__(self, root: str = ".", listen: str = "127.0.0.1:9181", **_ignored):
        _listen(listen)

    async def list(self) -> List[ModelSettings]:
        with _lock:
            wanted = dict(_wanted)
        found = []
        for name, (version, uri) in wanted.items():
            try:
                found.append(settings_for(name, version, uri))
            except Refused as e:
                logger.warning(f"Switchyard loader: {e}")
        return found

    async def find(self, name: str) -> List[ModelSettings]:
        with _lock:
            wanted = _wanted.get(name)
        if wanted is None:
            raise ModelNotFound(name)
        try:
            return [settings_for(name, wanted[0], wanted[1])]
        except Refused as e:
            # Checked when Switchyard named it; the folder changed since.
            raise MLServerError(str(e)) from e
