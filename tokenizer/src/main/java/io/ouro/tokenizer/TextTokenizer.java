package io.ouro.tokenizer;

/**
 * What the tokenization job and the training reader need from a tokenizer: text to ids and back,
 * the vocabulary size (which decides the shard token type), the end-of-document id, and a
 * fingerprint that identifies the vocabulary and rules (written into every shard's manifest entry).
 */
public interface TextTokenizer {

  /** Ids of {@code text}, without any special tokens added. */
  int[] encode(String text);

  /** Text of {@code ids}; the inverse of {@link #encode} for valid UTF-8 text. */
  String decode(int[] ids);

  /** One more than the largest id this tokenizer can produce, added tokens included. */
  int vocabSize();

  /** The id written between documents (GPT-2's {@code <|endoftext|>}, Qwen3's {@code <|endoftext|>}). */
  int eosId();

  /** A stable hash of the vocabulary, merges and rules, hex encoded. */
  String fingerprint();
}
