#!/usr/bin/env python3
"""Computes the reference embeddings that the candle encoder is checked against.

Run once (needs `pip install sentence-transformers`, which this project does not otherwise use):

    python3 deploy/models/reference_embeddings.py models operators/tests/fixtures/reference_embeddings.json

For each model: sentence-transformers with mean pooling over the attention mask, then L2
normalisation — the same recipe `operators::intent::encoder` implements.
"""
import json
import sys

from sentence_transformers import SentenceTransformer, models

SENTENCES = {
    "m3e-small": ["我要退货", "我的快递到哪了？订单号 12345678", "怎么开发票", "hello 我想改一下收货地址"],
    "all-minilm-l6-v2": ["I want to return my order", "Where is my parcel? Order 12345678", "hi"],
}


def encoder(path):
    word = models.Transformer(path)
    pooling = models.Pooling(word.get_word_embedding_dimension(), pooling_mode="mean")
    return SentenceTransformer(modules=[word, pooling], device="cpu")


def main():
    models_dir, out = sys.argv[1], sys.argv[2]
    result = {}
    for name, sentences in SENTENCES.items():
        model = encoder(f"{models_dir}/{name}")
        vectors = model.encode(sentences, normalize_embeddings=True, batch_size=1)
        result[name] = [{"text": s, "embedding": [float(x) for x in v]} for s, v in zip(sentences, vectors)]
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
