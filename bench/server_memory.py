"""Rasa server start-up time and resident memory: Kefu's encoder pipeline vs Rasa's stock one.

Both NLU pipelines are trained on the project's own NLU data (`rasa train nlu`), then each
model is served by a real `rasa run --enable-api` process. Start-up is the time from
spawning the process to the first successful `POST /model/parse`; memory is the resident
set (VmRSS, plus any child processes) after 50 warm parses.

    python bench/server_memory.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, List

import yaml

ROOT = Path(__file__).resolve().parent.parent
PROJECT_CONFIG = ROOT / "rasa_project" / "config.yml"
NLU = ROOT / "rasa_project" / "data" / "nlu"
MESSAGES = ["我的卡丢了", "where is my order", "转账限额是多少", "I want a refund", "你好", "thanks a lot"]


def stock_pipeline() -> List[Dict[str, Any]]:
    """Rasa's documented default-style pipeline for Chinese: jieba, sparse features, DIET."""
    return [
        {"name": "JiebaTokenizer", "dictionary_path": "data/lexicons/jieba"},
        {"name": "RegexFeaturizer", "case_sensitive": False},
        {"name": "LexicalSyntacticFeaturizer"},
        {"name": "CountVectorsFeaturizer", "lowercase": True},
        {"name": "CountVectorsFeaturizer", "analyzer": "char_wb", "min_ngram": 1, "max_ngram": 4, "lowercase": True},
        {"name": "DIETClassifier", "epochs": 100, "random_seed": 42},
        {"name": "EntitySynonymMapper"},
        {"name": "FallbackClassifier", "threshold": 0.5},
    ]


def write_config(out: Path, stock: bool) -> Path:
    config = yaml.safe_load(PROJECT_CONFIG.read_text(encoding="utf-8"))
    if stock:
        config["pipeline"] = stock_pipeline()
    config["policies"] = []
    out.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    """VmRSS of `pid` and its descendants, in MiB."""
    total = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        pids += [int(c) for c in children]
    return total / 1024


def parse(port: int, text: str) -> Dict[str, Any]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/model/parse",
        data=json.dumps({"text": text}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def serve(model: Path, workdir: Path) -> Dict[str, float]:
    port = free_port()
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "HF_HUB_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    log = open(workdir / f"{model.stem}.log", "wb")
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rasa", "run", "--enable-api", "-m", str(model), "--port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"rasa run exited with {proc.returncode}; see {workdir / (model.stem + '.log')}")
            try:
                parse(port, "hello")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.25)
            if time.monotonic() - started > 600:
                raise RuntimeError("server not ready after 600 s")
        ready = time.monotonic() - started
        timings = []
        for i in range(50):
            t0 = time.perf_counter()
            parse(port, MESSAGES[i % len(MESSAGES)])
            timings.append((time.perf_counter() - t0) * 1000)
        return {"ready_s": ready, "rss_mb": rss_mb(proc.pid), "p50_ms": statistics.median(timings)}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="keep models and logs in this directory")
    args = parser.parse_args()
    os.environ.update(RASA_TELEMETRY_ENABLED="false", HF_HUB_OFFLINE="1", TF_CPP_MIN_LOG_LEVEL="2")
    from rasa.model_training import train_nlu  # lazy: TensorFlow, after the environment above is set

    rows = []
    with tempfile.TemporaryDirectory(prefix="kefu-mem-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for name, stock in (("kefu (encoder int8 + BertIntentClassifier + DIET entities)", False),
                            ("stock (CountVectors + DIET 100 epochs)", True)):
            key = "stock" if stock else "kefu"
            config = write_config(work / f"{key}.yml", stock)
            t0 = time.monotonic()
            archive = train_nlu(str(config), str(NLU), str(work), fixed_model_name=key)
            train_s = time.monotonic() - t0
            measured = serve(Path(archive), work)
            rows.append([name, f"{train_s:.0f}", f"{Path(archive).stat().st_size / 2**20:.1f}",
                         f"{measured['ready_s']:.1f}", f"{measured['rss_mb']:.0f}", f"{measured['p50_ms']:.1f}"])
            print(f"{key}: {rows[-1]}", flush=True)
    header = ["NLU pipeline (project data)", "train (s)", "archive (MiB)", "start-up to first parse (s)",
              "RSS after 50 parses (MiB)", "parse p50 (ms)"]
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print("\nThe encoder pipeline's archive references models/encoder/ (118 MB int8 ONNX) by path; "
          "its RSS includes the loaded encoder.")


if __name__ == "__main__":
    main()
