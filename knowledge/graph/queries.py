"""The one set of parameterised Cypher queries, in the subset FalkorDB and Neo4j both run.

Values are always `$parameters`; the only things spliced into query text are node labels and
relationship types, and those come from the closed sets below (checked by the loader's
JSON Schema), never from user input. Dialect specifics (indexes, constraints, atomic
replacement) live in the backend modules.
"""

from __future__ import annotations

NODE_TYPES = ("Product", "Category", "Fee", "Limit", "Policy", "Requirement", "Document", "Channel")
RELATION_TYPES = (
    "IN_CATEGORY",  # product -> category, category -> parent category
    "HAS_FEE",  # product -> fee {amount, unit, period, note_zh, note_en}
    "HAS_LIMIT",  # product -> limit {amount, unit, period, note_zh, note_en}
    "REQUIRES",  # product -> eligibility requirement {note_zh, note_en}
    "NEEDS_DOCUMENT",  # product -> document {optional, note_zh, note_en}
    "AVAILABLE_VIA",  # product/process -> channel {note_zh, note_en}
    "GOVERNED_BY",  # product/category -> policy {note_zh, note_en}
    "RELATED_TO",  # anything -> anything (see also)
)
META_ID = "kefu-graph-meta"

_NODE_FIELDS = "n.id AS id, n.type AS type, n.kind AS kind, n.name_zh AS name_zh, n.name_en AS name_en"
_EDGE_FIELDS = (
    "r.amount AS amount, r.unit AS unit, r.period AS period, r.optional AS optional, "
    "r.note_zh AS note_zh, r.note_en AS note_en"
)

COUNT_NODES = "MATCH (n:Node) RETURN count(n) AS n"
COUNT_RELATIONS = "MATCH (:Node)-[r]->(:Node) RETURN count(r) AS n"
META_DIGEST = "MATCH (m:Meta {id: $id}) RETURN m.digest AS digest"

CATALOG = f"MATCH (n:Node) RETURN {_NODE_FIELDS}, n.aliases AS aliases ORDER BY n.id"
NODE = (
    f"MATCH (n:Node {{id: $id}}) RETURN {_NODE_FIELDS}, n.aliases AS aliases, "
    "n.description_zh AS description_zh, n.description_en AS description_en"
)
FEE_OF = (
    "MATCH (p:Node {id: $product})-[r:HAS_FEE]->(n:Node {id: $fee}) "
    f"RETURN p.id AS product, p.name_zh AS product_zh, p.name_en AS product_en, {_NODE_FIELDS}, {_EDGE_FIELDS}"
)
PRODUCTS_WITHOUT_FEE = (
    "MATCH (n:Node)-[r:HAS_FEE]->(f:Node {id: $fee}) "
    "MATCH (n)-[:IN_CATEGORY]->(c:Node) "
    "WHERE r.amount = 0 AND ($category IS NULL OR c.id = $category) "
    f"RETURN DISTINCT {_NODE_FIELDS}, r.note_zh AS note_zh, r.note_en AS note_en ORDER BY id"
)
FEE_ACROSS = (
    "MATCH (n:Node)-[r:HAS_FEE]->(f:Node {id: $fee}) "
    "MATCH (n)-[:IN_CATEGORY]->(c:Node) "
    "WHERE $category IS NULL OR c.id = $category "
    f"RETURN DISTINCT {_NODE_FIELDS}, {_EDGE_FIELDS} ORDER BY id"
)
PRODUCTS_IN = (
    "MATCH (n:Node)-[:IN_CATEGORY]->(c:Node {id: $category}) "
    f"RETURN {_NODE_FIELDS}, n.description_zh AS description_zh, n.description_en AS description_en ORDER BY id"
)
# One query per relation type: the type is part of the pattern, so it is fixed text, not a parameter.
RELATED = {
    rel: f"MATCH (p:Node {{id: $id}})-[r:{rel}]->(n:Node) RETURN {_NODE_FIELDS}, {_EDGE_FIELDS} ORDER BY id"
    for rel in RELATION_TYPES
}
RELATED_INTO = {
    rel: f"MATCH (n:Node)-[r:{rel}]->(t:Node {{id: $id}}) RETURN {_NODE_FIELDS}, {_EDGE_FIELDS} ORDER BY id"
    for rel in RELATION_TYPES
}

# Loading (used by the backends' replace_graph; labels/types are from the closed sets above).
DELETE_ALL = "MATCH (n) WHERE n:Node OR n:Meta DETACH DELETE n"
SET_META = "MERGE (m:Meta {id: $id}) SET m.digest = $digest"


def create_nodes(node_type: str) -> str:
    """Create a batch of nodes of one type: `$rows` is a list of property maps."""
    if node_type not in NODE_TYPES:
        raise ValueError(f"unknown node type {node_type!r}")
    return f"UNWIND $rows AS row CREATE (n:Node:{node_type}) SET n = row"


def create_relations(rel_type: str) -> str:
    """Create a batch of edges of one type: `$rows` items are {src, dst, props}."""
    if rel_type not in RELATION_TYPES:
        raise ValueError(f"unknown relation type {rel_type!r}")
    return (
        "UNWIND $rows AS row MATCH (a:Node {id: row.src}) MATCH (b:Node {id: row.dst}) "
        f"CREATE (a)-[r:{rel_type}]->(b) SET r = row.props"
    )
