"""Case library on Elasticsearch 8 (official client): index mapping, bulk indexing, multi_match + kNN.

    elasticsearch://user:pw@es.internal:9200/kefu_cases      (http; add ?tls=1 for https)
    https://user:pw@es.example.com:9243/kefu_cases

One `_msearch` round trip runs the full-text query (jieba-segmented Chinese in a whitespace-analysed
field, so words match like in PostgreSQL) and the kNN query; the two rankings are fused with the
same reciprocal-rank fusion and confidence as the PostgreSQL backend (no trigram signal here).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Optional

import elastic_transport
import elasticsearch
from elasticsearch import Elasticsearch

from knowledge.cases import Case, CaseHit
from knowledge.embed import Embedder, shared_embedder
from knowledge.errors import BadInput, BadQuery, NotFound, StoreUnavailable
from knowledge.search import bounded_limit, prepare_query, rank_and_calibrate, segmented
from knowledge.urls import StoreURL

log = logging.getLogger(__name__)
DEFAULT_INDEX = "kefu_cases"
CANDIDATES = 20


class ElasticsearchCaseStore:
    def __init__(self, url: StoreURL, embedder: Optional[Embedder] = None, timeout: float = 5.0,
                 client: Any = None) -> None:
        self.url = url
        self.index = url.database or DEFAULT_INDEX
        if not self.index.replace("_", "").replace("-", "").isalnum() or self.index != self.index.lower():
            raise BadInput(f"Elasticsearch index name must be lower-case letters, digits, - and _: {self.index!r}")
        self.embedder = embedder or shared_embedder()
        self.timeout = timeout
        self._client = client

    def __repr__(self) -> str:
        return f"ElasticsearchCaseStore({str(self.url)!r}, index={self.index!r})"

    @property
    def client(self) -> Any:
        if self._client is None:
            tls = self.url.scheme == "https" or self.url.options.get("tls") in ("1", "true")
            node = f"{'https' if tls else 'http'}://{self.url.hostname or 'localhost'}:{self.url.port or 9200}"
            auth = (self.url.username, self.url.password or "") if self.url.username else None
            self._client = Elasticsearch(node, basic_auth=auth, request_timeout=self.timeout, max_retries=1,
                                         retry_on_timeout=False)
        return self._client

    def _call(self, fn: Any) -> Any:
        """Run one client call; map the client's errors to ours."""
        try:
            return fn()
        except elasticsearch.NotFoundError as exc:
            raise NotFound(f"not found in Elasticsearch index {self.index}") from exc
        except elasticsearch.BadRequestError as exc:
            raise BadQuery(f"Elasticsearch rejected the request: {exc.message}") from exc
        except (elastic_transport.ConnectionError, elastic_transport.ConnectionTimeout, elasticsearch.ApiError,
                elastic_transport.TransportError) as exc:
            raise StoreUnavailable(f"Elasticsearch at {self.url} failed: {exc.__class__.__name__}") from exc

    def mapping(self) -> dict[str, Any]:
        return {
            "properties": {
                "language": {"type": "keyword"},
                "question": {"type": "text"},
                "question_seg": {"type": "text", "analyzer": "whitespace"},
                "resolution": {"type": "text"},
                "resolution_seg": {"type": "text", "analyzer": "whitespace"},
                "category": {"type": "keyword"},
                "satisfaction": {"type": "integer"},
                "tags": {"type": "keyword"},
                "date": {"type": "keyword"},
                "excerpt": {"type": "object", "enabled": False},
                "content_hash": {"type": "keyword"},
                "encoder": {"type": "keyword"},
                "embedding": {"type": "dense_vector", "dims": self.embedder.dim, "index": True,
                              "similarity": "cosine"},
            }
        }

    def ensure_schema(self) -> None:
        if not self._call(lambda: self.client.indices.exists(index=self.index)).body:
            self._call(lambda: self.client.indices.create(index=self.index, mappings=self.mapping()))

    def upsert(self, cases: list[Case], progress: bool = False) -> dict[str, int]:
        """Bulk-index new and changed cases (content hash compared first), then refresh."""
        self.ensure_schema()
        known: dict[str, str] = {}
        if cases:
            found = self._call(lambda: self.client.mget(index=self.index, ids=[c.id for c in cases],
                                                        source=["content_hash", "encoder"]))
            for doc in found.body.get("docs", []):
                if doc.get("found"):
                    source = doc.get("_source", {})
                    if source.get("encoder") == self.embedder.fingerprint:
                        known[doc["_id"]] = source.get("content_hash", "")
        todo = [c for c in cases if known.get(c.id) != c.content_hash()]
        vectors = self.embedder.embed([c.question for c in todo]) if todo else []
        operations: list[dict[str, Any]] = []
        for c, v in zip(todo, vectors, strict=True):
            operations.append({"index": {"_index": self.index, "_id": c.id}})
            operations.append(self._document(c, [float(x) for x in v]))
        if operations:
            result = self._call(lambda: self.client.bulk(operations=operations, refresh="wait_for"))
            if result.body.get("errors"):
                failed = [i for i in result.body.get("items", []) if i.get("index", {}).get("error")]
                raise BadQuery(f"Elasticsearch refused {len(failed)} case(s): {json.dumps(failed[:3])[:300]}")
        return {"indexed": len(todo), "unchanged": len(cases) - len(todo)}

    def _document(self, c: Case, vector: list[float]) -> dict[str, Any]:
        return {
            "language": c.language, "question": c.question, "question_seg": segmented(c.question),
            "resolution": c.resolution, "resolution_seg": segmented(c.resolution), "category": c.category,
            "satisfaction": c.satisfaction, "tags": list(c.tags), "date": c.date,
            "excerpt": [{"role": r, "text": t} for r, t in c.excerpt], "content_hash": c.content_hash(),
            "encoder": self.embedder.fingerprint, "embedding": vector,
        }

    @staticmethod
    def _case(doc_id: str, s: dict[str, Any]) -> Case:
        turns = tuple((t.get("role", ""), t.get("text", "")) for t in s.get("excerpt") or [])
        return Case(doc_id, s.get("language", ""), s.get("question", ""), s.get("resolution", ""), turns,
                    s.get("category", ""), s.get("satisfaction"), tuple(s.get("tags") or ()), s.get("date", ""))

    def get(self, case_id: str) -> Case:
        doc = self._call(lambda: self.client.get(index=self.index, id=str(case_id)[:64]))
        return self._case(doc["_id"], doc["_source"])

    def search_body(self, text: str, language: str, qvec: list[float], limit: int) -> list[dict[str, Any]]:
        """The `_msearch` body: a multi_match full-text search and a kNN search, both filtered by language."""
        language_filter = {"term": {"language": language}}
        source = {"excludes": ["embedding"]}
        full_text = {
            "size": limit, "_source": source,
            "query": {"bool": {"filter": [language_filter], "must": [{"multi_match": {
                "query": segmented(text), "fields": ["question_seg^3", "question^2", "resolution_seg"],
                "type": "best_fields"}}]}},
        }
        knn = {
            "size": limit, "_source": source,
            "knn": {"field": "embedding", "query_vector": qvec, "k": limit, "num_candidates": max(50, limit * 5),
                    "filter": language_filter},
        }
        return [{"index": self.index}, full_text, {"index": self.index}, knn]

    def search(self, query: str, language: Optional[str] = None, limit: int = 5) -> list[CaseHit]:
        text, lang = prepare_query(query, language)
        if not text:
            return []
        limit = bounded_limit(limit)
        qvec = [float(x) for x in self.embedder.embed_query(text)]
        body = self.search_body(text, lang, qvec, CANDIDATES)
        result = self._call(lambda: self.client.msearch(searches=body))
        responses = result.body.get("responses", [])
        if len(responses) != 2 or any("error" in r for r in responses):
            raise BadQuery(f"Elasticsearch search failed: {json.dumps(responses)[:300]}")
        docs: dict[str, Case] = {}
        rankings: dict[str, list[tuple[str, float]]] = {"fts": [], "vector": []}
        for signal, response in zip(("fts", "vector"), responses, strict=True):
            for hit in response.get("hits", {}).get("hits", []):
                docs[hit["_id"]] = self._case(hit["_id"], hit.get("_source", {}))
                score = float(hit.get("_score") or 0.0)
                # BM25 is unbounded: squash to [0, 1); ES reports cosine kNN scores as (1 + cos) / 2
                rankings[signal].append((hit["_id"], score / (score + 10.0) if signal == "fts" else 2 * score - 1))
        hits = rank_and_calibrate(rankings, limit)
        return [CaseHit(docs[h.ref], h.confidence, h.scores) for h in hits]

    def export(self) -> list[Case]:
        result = self._call(lambda: self.client.search(index=self.index, size=10_000, sort=["_doc"],
                                                       source={"excludes": ["embedding"]}, query={"match_all": {}}))
        return sorted((self._case(h["_id"], h["_source"]) for h in result.body["hits"]["hits"]), key=lambda c: c.id)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
