"""Put a promoted (or rolled-back-to) model into service.

The Rasa server serves one archive path (`kefu.modelplan.model_path`, models/kefu.tar.gz, which
`kefu run` passes to `rasa run --model`). Installing a model copies its archive there atomically
(temp file in the same directory + `os.replace`: a reader sees the old or the new archive, never
half of one), then asks a running Rasa server to load it (`PUT /model {"model_file": path}`,
Rasa's HTTP API, enabled by `--enable-api`). A server that is down is logged, not an error: it
loads the file when it next starts. An NLU-only archive never replaces one with dialogue
policies (the assistant would lose its dialogue manager).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from kefu.config import Settings
from kefu.errors import BadInput, KefuError
from kefu.modelplan import model_path

log = logging.getLogger("kefu.iterate")

NLU_ONLY = 1  # rasa.shared.data.TrainingType.NLU as stored in an archive's metadata.json
RELOAD_TIMEOUT_S = 600.0  # loading a full model (encoder + policies) takes a while on two cores


@dataclass
class Serving:
    """Where the served model lives and which Rasa server to tell; `rasa_url` None: file only."""

    path: Path
    rasa_url: Optional[str] = None
    rasa_token: Optional[str] = field(default=None, repr=False)
    timeout: float = RELOAD_TIMEOUT_S


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def training_type(archive: Path) -> Optional[int]:
    """The archive's Rasa training type (1 NLU, 2 CORE, 3 BOTH, 4 END_TO_END); None when unreadable."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = tar.extractfile("metadata.json")
            doc = json.loads(member.read()) if member is not None else {}
    except (OSError, KeyError, ValueError, tarfile.TarError):
        return None
    value = doc.get("training_type") if isinstance(doc, dict) else None
    return value if isinstance(value, int) else None


def copy_atomically(source: Path, target: Path) -> None:
    """`target` becomes a byte copy of `source` in one rename (same directory, so same filesystem)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def reload_rasa(serving: Serving) -> str:
    """Ask the Rasa server to load the served archive: "loaded", "server down" or "failed (...)"."""
    if not serving.rasa_url:
        return "no server configured"
    query = f"?{urllib.parse.urlencode({'token': serving.rasa_token})}" if serving.rasa_token else ""
    body = json.dumps({"model_file": str(serving.path)}).encode()
    request = urllib.request.Request(serving.rasa_url.rstrip("/") + "/model" + query, data=body, method="PUT",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=serving.timeout) as resp:
            status = resp.status
    except urllib.error.HTTPError as exc:
        log.error("the Rasa server at %s refused to load %s: HTTP %d", serving.rasa_url, serving.path, exc.code)
        return f"failed (HTTP {exc.code})"
    except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        log.warning("the Rasa server at %s is not answering (%s); it serves %s when it next starts",
                    serving.rasa_url, reason, serving.path)
        return "server down"
    log.info("the Rasa server at %s loaded %s (HTTP %d)", serving.rasa_url, serving.path, status)
    return "loaded"


def install(model: Path | str, serving: Optional[Serving]) -> dict[str, Any]:
    """Serve `model`: atomic copy to the served path, then a reload request. None: nothing served."""
    if serving is None:
        return {"installed": False}
    model = Path(model)
    if not model.is_file():
        raise KefuError(f"the model archive {model} is missing; cannot put it into service")
    if training_type(model) == NLU_ONLY and serving.path.is_file() and training_type(serving.path) != NLU_ONLY:
        raise BadInput(f"{model} is an NLU-only model: it would replace a served model with dialogue policies")
    copy_atomically(model, serving.path)
    digest = file_sha256(serving.path)
    log.info("serving %s at %s (sha256 %s)", model.name, serving.path, digest[:12])
    return {"installed": True, "path": str(serving.path), "sha256": digest, "reload": reload_rasa(serving)}


def project_serving(settings: Settings) -> Serving:
    """The archive `kefu run` serves and its Rasa server (token: KEFU_RASA_TOKEN or var/run/rasa_token)."""
    return Serving(path=model_path(settings), rasa_url=f"http://127.0.0.1:{settings.rasa_port}",
                   rasa_token=settings.rasa_api_token())
