// Reads one ouro token shard (Arrow IPC file) with Apache Arrow's JavaScript implementation and prints
// what it holds: documents, tokens, the sum of all ids, the token type and the shard's format tag.
import { readFileSync } from 'node:fs';
import { tableFromIPC } from 'apache-arrow';

const table = tableFromIPC(readFileSync(process.argv[2]));
const tokens = table.getChild('tokens');
let docs = 0;
let count = 0;
let sum = 0n;
let lastIsEos = true;
const eos = Number(table.schema.metadata.get('ouro.eos'));
for (const doc of tokens) {
  docs++;
  const ids = doc.toArray();
  count += ids.length;
  for (const v of ids) sum += BigInt(v);
  lastIsEos = lastIsEos && ids.length > 0 && Number(ids[ids.length - 1]) === eos;
}
console.log(JSON.stringify({
  docs, tokens: count, sum: sum.toString(), everyDocEndsWithEos: lastIsEos,
  type: String(tokens.type), format: table.schema.metadata.get('ouro.format'),
}));
