"""What makes decoding fast, for every model family: the KV cache (prompt once per query, beam suffixes in
place), the attention over it (one cascade kernel, exact) and the greedy and beam search loops."""
