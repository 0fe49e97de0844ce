// Reads one ouro token shard (Arrow IPC file) with Apache Arrow's JavaScript implementation and prints
// what it holds: documents (rows ending in EOS: a document longer than a record batch's room continues
// in the next row), tokens, the sum of all ids, whether the stream ends with EOS, the token type, the
// shard's format tag and the largest record batch in tokens.
import { readFileSync } from 'node:fs';
import { tableFromIPC } from 'apache-arrow';

const table = tableFromIPC(readFileSync(process.argv[2]));
const tokens = table.getChild('tokens');
const eos = Number(table.schema.metadata.get('ouro.eos'));
let docs = 0;
let count = 0;
let sum = 0n;
let last = -1;
for (const row of tokens) {
  const ids = row.toArray();
  count += ids.length;
  for (const v of ids) sum += BigInt(v);
  if (ids.length > 0) last = Number(ids[ids.length - 1]);
  if (last === eos) docs++;
}
let maxBatch = 0;
for (const batch of table.batches) {
  const child = batch.getChild('tokens');
  let n = 0;
  for (const row of child) n += row.length;
  maxBatch = Math.max(maxBatch, n);
}
console.log(JSON.stringify({
  docs, tokens: count, sum: sum.toString(), endsWithEos: last === eos,
  type: String(tokens.type), format: table.schema.metadata.get('ouro.format'), maxBatchTokens: maxBatch,
}));
