"""The HNSW search breadth both the settings (``SOMA_MILVUS_SEARCH_EF``) and the vector store
default to. No driver here: the settings import it."""

# at 100k clustered 384-dim vectors in milvus-lite's two float16 graphs, ef 128 gave recall@10
# 0.80, 512 0.947-0.950, 576 0.95+ (bench/search_quality.py); a graph's search stays ~1-2 ms
DEFAULT_SEARCH_EF = 576
